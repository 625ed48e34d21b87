namespace Engine.Bench; static class Program { static void Main(string[] a) { } }
