using Meridian.Data;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Tests.Hosting;

/// <summary>Each provider's migrations build the model the code has: a model change without its migration fails here, not at a user's upgrade.</summary>
public sealed class MigrationsTests
{
    [Fact]
    public void The_SQLite_migrations_cover_the_model()
    {
        using var db = new SqliteMeridianDb(new DbContextOptionsBuilder<SqliteMeridianDb>().UseSqlite("Data Source=:memory:").UseSnakeCaseNamingConvention().Options);
        Assert.False(db.Database.HasPendingModelChanges());
    }

    [Fact]
    public void The_PostgreSQL_migrations_cover_the_model()
    {
        using var db = new PostgresMeridianDb(new DbContextOptionsBuilder<PostgresMeridianDb>().UseNpgsql("Host=localhost;Database=none").UseSnakeCaseNamingConvention().Options);
        Assert.False(db.Database.HasPendingModelChanges());
    }
}
