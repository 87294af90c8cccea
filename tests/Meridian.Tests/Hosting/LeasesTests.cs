using Meridian.Hosting;

namespace Meridian.Tests.Hosting;

public sealed class LeasesTests
{
    private static readonly DateTime Now = new(2025, 6, 1, 12, 0, 0, DateTimeKind.Utc);
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    [Fact]
    public void A_lease_this_node_holds_with_more_than_half_left_needs_no_write() =>
        Assert.False(Leases.NeedsWrite("a", Now.AddSeconds(16), "a", Now, Lease));

    [Theory]
    [InlineData(15)]
    [InlineData(1)]
    public void A_lease_this_node_holds_with_half_or_less_left_is_renewed(int secondsLeft) =>
        Assert.True(Leases.NeedsWrite("a", Now.AddSeconds(secondsLeft), "a", Now, Lease));

    [Fact]
    public void A_lease_that_has_run_out_is_taken_again() =>
        Assert.True(Leases.NeedsWrite("a", Now.AddSeconds(-1), "a", Now, Lease));

    [Fact]
    public void A_lease_another_node_holds_is_asked_for_and_left_to_the_conditional_write() =>
        Assert.True(Leases.NeedsWrite("b", Now.AddSeconds(30), "a", Now, Lease));

    [Fact]
    public void A_job_without_a_lease_or_without_a_row_takes_it()
    {
        Assert.True(Leases.NeedsWrite(null, null, "a", Now, Lease));
        Assert.True(Leases.NeedsWrite("a", null, "a", Now, Lease));
    }
}
