namespace Engine.Samples; static class Program { static int Main(string[] a) => 0; }
