using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Meridian.Data;

// Used only by `dotnet ef migrations add`: one set of migrations per provider, generated from the same model:
//   dotnet ef migrations add <Name> --project src/Meridian.Server --context SqliteMeridianDb --output-dir Data/Migrations/Sqlite
//   dotnet ef migrations add <Name> --project src/Meridian.Server --context PostgresMeridianDb --output-dir Data/Migrations/Postgres

internal sealed class SqliteDesignTimeFactory : IDesignTimeDbContextFactory<SqliteMeridianDb>
{
    public SqliteMeridianDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SqliteMeridianDb>().UseSqlite("Data Source=design.db").UseSnakeCaseNamingConvention().Options);
}

internal sealed class PostgresDesignTimeFactory : IDesignTimeDbContextFactory<PostgresMeridianDb>
{
    public PostgresMeridianDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PostgresMeridianDb>().UseNpgsql("Host=localhost;Database=design").UseSnakeCaseNamingConvention().Options);
}
