using System.Data.Common;

namespace Meridian.Hosting;

public static class CommandParameters
{
    /// <summary>
    /// Adds a parameter to a raw command, null as <see cref="DBNull"/>. The name is used as given: write the <c>@</c>
    /// where it matters (Microsoft.Data.Sqlite binds a name with its prefix by one lookup, one without by trying each
    /// prefix in turn).
    /// </summary>
    public static void AddParameter(this DbCommand command, string name, object? value)
    {
        var p = command.CreateParameter();
        p.ParameterName = name;
        p.Value = value ?? DBNull.Value;
        command.Parameters.Add(p);
    }
}
