using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;
using Meridian.Platform.Audit;
using Meridian.Platform.Outbox;
using Meridian.Profiles;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Members;

/// <summary>A member's profile at one brand of its programme.</summary>
public sealed record MemberProfileDto(long BrandId, long ProfileId, DateTime LinkedAt);

/// <summary>
/// Which profiles a member is: one per brand of its programme (<see cref="LoyaltyMemberProfile"/>). Enrolment at a brand
/// of a shared programme links the profile to the member the same person already is through another brand (same phone,
/// email or unionid, normalised) instead of opening a second account; staff link and unlink by hand, audited. Every
/// lookup by profile (the order follower, <c>GET /members?profileId=</c>, the wallet, benefits) goes through these rows,
/// and through the profiles merged into the one asked about.
/// </summary>
public sealed class MemberLinks(MeridianDb db, ProfileDirectory profiles, EventPublisher events, AuditLog audit, TimeProvider time)
{
    /// <summary>What an enrolment did: a new member, or the existing member of the same person linked to the profile.</summary>
    public sealed record Enrolment(LoyaltyMember Member, bool Linked);

    /// <summary>The members holding any of the profiles (within the caller's reach).</summary>
    public IQueryable<LoyaltyMember> OfProfiles(IReadOnlyCollection<long> profileIds) =>
        db.Set<LoyaltyMember>().Where(m => db.Set<LoyaltyMemberProfile>().Any(p => p.MemberId == m.Id && profileIds.Contains(p.ProfileId)));

    /// <summary>The member of the profile or of a profile merged into it (its first, when it has several).</summary>
    public async Task<LoyaltyMember?> OfProfileAsync(long profileId, CancellationToken ct) =>
        await OfProfiles(await profiles.WithMergedAsync(profileId, ct)).AsNoTracking().OrderBy(m => m.Id).FirstOrDefaultAsync(ct);

    /// <summary>The member of a brand's profile (or one merged into it) in the programme the brand takes part in.</summary>
    public async Task<LoyaltyMember?> AtBrandAsync(long brandId, long profileId, CancellationToken ct)
    {
        var owners = await profiles.WithMergedAsync(profileId, ct);
        var memberId = await db.Set<LoyaltyMemberProfile>().AsNoTracking().Where(p => p.BrandId == brandId && owners.Contains(p.ProfileId))
            .OrderBy(p => p.MemberId).Select(p => (long?)p.MemberId).FirstOrDefaultAsync(ct);
        return memberId is { } id ? await db.Set<LoyaltyMember>().AsNoTracking().SingleOrDefaultAsync(m => m.Id == id, ct) : null;
    }

    /// <summary>The brands the programme is open to.</summary>
    public Task<List<long>> BrandsOfAsync(long programmeId, CancellationToken ct) =>
        db.Set<LoyaltyProgrammeBrand>().AsNoTracking().Where(b => b.ProgrammeId == programmeId).OrderBy(b => b.BrandId).Select(b => b.BrandId).ToListAsync(ct);

    /// <summary>
    /// Enrols a live profile of a brand of the programme (the caller checked both are within its reach): links it to the
    /// member the same person already is through another brand of a shared programme, or opens a new member. Throws a
    /// 409 when the profile (or one merged into it) already belongs to a member.
    /// </summary>
    public async Task<Enrolment> EnrolAsync(LoyaltyProgramme programme, long profileId, long brandId, CancellationToken ct)
    {
        // One person enrolling at two brands at once: the second waits for the first, then links to its member.
        await using var transaction = programme.Shared && db.Database.CurrentTransaction is null ? await db.Database.BeginTransactionAsync(ct) : null;
        if (programme.Shared) await TransactionLocks.SerialiseAsync(db, "loyalty-enrolment", programme.Id, 0, ct);
        await EnsureUnlinkedAsync(programme.Id, profileId, ct);
        if (programme.Shared && await SamePersonMemberAsync(programme, profileId, brandId, ct) is { } existing)
        {
            Link(existing, brandId, profileId, "enrolled: same person at another brand of the programme");
            await db.SaveChangesAsync(ct);
            if (transaction is not null) await transaction.CommitAsync(ct);
            return new Enrolment(existing, true);
        }
        var member = new LoyaltyMember { TenantId = programme.TenantId, ProgrammeId = programme.Id, ProfileId = profileId, EnrolledAt = Instants.Now(time) };
        db.Add(member);
        db.Add(new LoyaltyMemberProfile { TenantId = programme.TenantId, ProgrammeId = programme.Id, Member = member, BrandId = brandId, ProfileId = profileId, LinkedAt = member.EnrolledAt });
        events.Publish(programme.GroupId, brandId, () => new MemberEnrolled(member.Id, profileId, programme.Id));
        await db.SaveChangesAsync(ct);
        if (transaction is not null) await transaction.CommitAsync(ct);
        return new Enrolment(member, false);
    }

    /// <summary>Staff link a brand's profile to a member by hand (with a reason, audited); 409 when either side is taken.</summary>
    public async Task LinkAsync(LoyaltyMember member, long profileId, long brandId, string reason, CancellationToken ct)
    {
        await EnsureUnlinkedAsync(member.ProgrammeId, profileId, ct);
        if (await db.Set<LoyaltyMemberProfile>().AsNoTracking().Where(p => p.MemberId == member.Id && p.BrandId == brandId).Select(p => (long?)p.ProfileId).SingleOrDefaultAsync(ct) is { } held)
            throw new BusinessRuleException($"Member {member.Id} already has profile {held} at brand {brandId}; unlink it first.", StatusCodes.Status409Conflict, ProblemTypes.Conflict);
        Link(member, brandId, profileId, reason);
        await db.SaveChangesAsync(ct);
    }

    /// <summary>Staff unlink a profile (with a reason, audited); a member keeps at least one profile. False when the profile is not the member's.</summary>
    public async Task<bool> UnlinkAsync(LoyaltyMember member, long profileId, string reason, CancellationToken ct)
    {
        var links = await db.Set<LoyaltyMemberProfile>().Where(p => p.MemberId == member.Id).ToListAsync(ct);
        if (links.SingleOrDefault(p => p.ProfileId == profileId) is not { } link) return false;
        if (links.Count == 1)
            throw new BusinessRuleException($"Profile {profileId} is the member's only profile; a member keeps at least one.", StatusCodes.Status409Conflict, ProblemTypes.Conflict);
        db.Remove(link);
        audit.Record(link.BrandId, () => new AuditChange("loyalty.member.unlinked", "loyalty_member", member.Id,
            new { link.BrandId, link.ProfileId }, new { reason }));
        await db.SaveChangesAsync(ct);
        return true;
    }

    private void Link(LoyaltyMember member, long brandId, long profileId, string reason)
    {
        var link = new LoyaltyMemberProfile
        {
            TenantId = member.TenantId, ProgrammeId = member.ProgrammeId, MemberId = member.Id, BrandId = brandId, ProfileId = profileId, LinkedAt = Instants.Now(time),
        };
        db.Add(link);
        audit.Record(brandId, () => new AuditChange("loyalty.member.linked", "loyalty_member", member.Id, null, new { brandId, profileId, reason }));
    }

    private async Task EnsureUnlinkedAsync(long programmeId, long profileId, CancellationToken ct)
    {
        var owners = await profiles.WithMergedAsync(profileId, ct);
        if (await db.Set<LoyaltyMemberProfile>().AnyAsync(p => p.ProgrammeId == programmeId && owners.Contains(p.ProfileId), ct))
            throw new BusinessRuleException($"Profile {profileId} is already a member of the programme.", StatusCodes.Status409Conflict, ProblemTypes.Conflict);
    }

    /// <summary>The member the person behind the profile already is through another brand of the shared programme, if any.</summary>
    private async Task<LoyaltyMember?> SamePersonMemberAsync(LoyaltyProgramme programme, long profileId, long brandId, CancellationToken ct)
    {
        var otherBrands = (await BrandsOfAsync(programme.Id, ct)).Where(b => b != brandId).ToList();
        var samePerson = await profiles.SamePersonAsync(profileId, otherBrands, ct);
        if (samePerson.Count == 0) return null;
        var memberId = await db.Set<LoyaltyMemberProfile>().AsNoTracking().Where(p => p.ProgrammeId == programme.Id && samePerson.Contains(p.ProfileId))
            .OrderBy(p => p.MemberId).Select(p => (long?)p.MemberId).FirstOrDefaultAsync(ct);
        if (memberId is not { } id) return null;
        if (await db.Set<LoyaltyMemberProfile>().AnyAsync(p => p.MemberId == id && p.BrandId == brandId, ct))
            throw new BusinessRuleException($"The same person is member {id}, which already has a profile at brand {brandId}; link by hand if these are one customer.",
                StatusCodes.Status409Conflict, ProblemTypes.Conflict);
        return await db.Set<LoyaltyMember>().AsNoTracking().SingleAsync(m => m.Id == id, ct);
    }
}
