namespace Meridian.Platform.DemoData;

public sealed record DemoDataSpec(int Customers, int Seed, string OutputDirectory);

public static class DemoDataGenerator
{
    public static Task<string> WriteAsync(DemoDataSpec spec, CancellationToken ct) => throw new NotImplementedException();
}
