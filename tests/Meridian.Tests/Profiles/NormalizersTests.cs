using Meridian.Profiles.Identity;

namespace Meridian.Tests.Profiles;

public sealed class NormalizersTests
{
    [Theory]
    [InlineData("13812345678", "+8613812345678")]
    [InlineData("+86 138 1234 5678", "+8613812345678")]
    [InlineData("86-138-1234-5678", "+8613812345678")]
    [InlineData("(+86)13812345678", "+8613812345678")]
    [InlineData("138-1234-5678", "+8613812345678")]
    [InlineData("0086 13812345678", "+8613812345678")]
    [InlineData(" 138.1234.5678 ", "+8613812345678")]
    [InlineData("010-12345678", "+861012345678")]
    [InlineData("+852 6123 4567", "+85261234567")]
    [InlineData("+1 (415) 555-0100", "+14155550100")]
    public void Phones_in_the_formats_people_write_normalise_to_E164(string raw, string expected) =>
        Assert.Equal(expected, Normalizers.PhoneToE164(raw, "CN"));

    [Theory]
    [InlineData("12345")]
    [InlineData("1381234567")] // ten digits starting with 1: not a mainland mobile
    [InlineData("+86 238 1234 56789 0")]
    [InlineData("phone: 13812345678")]
    [InlineData("")]
    public void Values_that_cannot_be_phones_are_refused(string raw) => Assert.Null(Normalizers.PhoneToE164(raw, "CN"));

    [Fact]
    public void A_national_number_takes_the_brands_default_region() =>
        Assert.Equal("+85261234567", Normalizers.PhoneToE164("6123 4567", "HK"));

    [Theory]
    [InlineData(" Zhang.Wei@Example.COM ", "zhang.wei@example.com")]
    [InlineData("li@163.com", "li@163.com")]
    public void Emails_are_trimmed_and_lower_cased(string raw, string expected) => Assert.Equal(expected, Normalizers.EmailAddress(raw));

    [Theory]
    [InlineData("no-at-sign")]
    [InlineData("a@b")]
    [InlineData("a@@b.com")]
    [InlineData("a b@c.com")]
    public void Values_that_cannot_be_emails_are_refused(string raw) => Assert.Null(Normalizers.EmailAddress(raw));
}
