using Engine.Autodiff;

namespace Engine.Nn;

/// <summary>Modules applied in order; children are named "0", "1", ...</summary>
public sealed class Sequential : Module
{
    private readonly List<Module> layers = new();

    /// <summary>Chains <paramref name="modules"/>.</summary>
    public Sequential(params Module[] modules)
    {
        foreach (var m in modules) Add(m);
    }

    /// <summary>Appends a module.</summary>
    public Sequential Add(Module module)
    {
        RegisterModule(layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module);
        layers.Add(module);
        return this;
    }

    /// <summary>The layers in order.</summary>
    public IReadOnlyList<Module> Layers => layers;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        var x = input;
        foreach (var m in layers) x = m.Forward(x);
        return x;
    }
}
