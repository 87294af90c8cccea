// Sends one message of every Segment-Spec type through the official SDK, configured only with a host and a write key,
// exactly as a customer's own server would. Used by SegmentSdkTests; exits non-zero if the SDK reports an error.
import { Analytics } from '@segment/analytics-node'

const analytics = new Analytics({
  writeKey: process.env.MERIDIAN_WRITE_KEY,
  host: process.env.MERIDIAN_HOST,
  flushAt: 3,
  maxRetries: 1,
})
analytics.on('error', (err) => {
  console.error('sdk error', err?.reason ?? err)
  process.exitCode = 1
})

const userId = process.env.MERIDIAN_USER_ID
analytics.identify({ userId, traits: { email: 'Zhang.Wei@Example.com', phone: '+86 138 1234 5678', name: '张伟' } })
analytics.track({ userId, event: 'Order Completed', properties: { order_id: 'sdk-o-1', total: 12800, currency: 'CNY' } })
analytics.page({ anonymousId: 'sdk-anon-1', name: 'Home', properties: { url: 'https://shop.example.com/' } })
analytics.screen({ userId, name: 'Cart' })
analytics.group({ userId, groupId: 'company-1', traits: { name: 'ACME' } })
analytics.alias({ userId, previousId: 'sdk-anon-1' })
await analytics.closeAndFlush({ timeout: 20000 })
console.log('sent')
