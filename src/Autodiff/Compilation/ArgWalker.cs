using System.Collections;
using System.Collections.Concurrent;
using System.Globalization;
using System.Reflection;
using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// Finds, replaces and describes the device buffers inside the arguments of a kernel call: bare buffers, device
/// scalars, lists of buffers and descriptor structs (GEMM operands, Adam buffers, SPN maps) holding any of these.
/// The compiler uses it to see what a recorded call touches and to rebind a call to other buffers.
/// </summary>
internal static class ArgWalker
{
    private static readonly ConcurrentDictionary<Type, FieldInfo[]> FieldCache = new();
    private static readonly MethodInfo CloneMethod = typeof(object).GetMethod("MemberwiseClone", BindingFlags.Instance | BindingFlags.NonPublic)!;

    /// <summary>True for a float or int device buffer.</summary>
    public static bool IsBuffer(object? v) => v is DeviceBuffer<float> or DeviceBuffer<int>;

    /// <summary>Adds every buffer inside <paramref name="value"/> (a scalar's buffer included) to <paramref name="into"/>.</summary>
    public static void Collect(object? value, List<object> into)
    {
        switch (value)
        {
            case null or string or Delegate:
                return;
            case DeviceBuffer<float> or DeviceBuffer<int>:
                into.Add(value);
                return;
            case DeviceScalar s:
                into.Add(s.Buffer);
                return;
            case Array a when a.GetType().GetElementType()!.IsPrimitive:
                return;
            case IEnumerable e:
                foreach (var item in e) Collect(item, into);
                return;
        }
        var t = value.GetType();
        if (t.IsPrimitive || t.IsEnum || !t.IsValueType) return;
        foreach (var f in Fields(t)) Collect(f.GetValue(value), into);
    }

    /// <summary>
    /// <paramref name="value"/> with every buffer and device scalar passed through <paramref name="map"/>; lists are
    /// always copied (so a recorded call never shares a list its caller may change), structs only when a field changed.
    /// </summary>
    public static object? Map(object? value, Func<object, object> map)
    {
        switch (value)
        {
            case null or string or Delegate:
                return value;
            case DeviceBuffer<float> or DeviceBuffer<int> or DeviceScalar:
                return map(value);
            case Array a when a.GetType().GetElementType()!.IsPrimitive:
                return value;
            case IList list:
            {
                var elementType = ElementType(list.GetType());
                if (elementType == null) return value;
                var copy = (IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(elementType))!;
                foreach (var item in list) copy.Add(Map(item, map));
                if (value is Array arr)
                {
                    var mapped = Array.CreateInstance(elementType, arr.Length);
                    copy.CopyTo(mapped, 0);
                    return mapped;
                }
                return copy;
            }
        }
        var t = value.GetType();
        if (t.IsPrimitive || t.IsEnum || !t.IsValueType) return value;
        object? result = null;
        foreach (var f in Fields(t))
        {
            var field = f.GetValue(value);
            var mappedField = Map(field, map);
            // Map hands back the very object it was given when nothing inside changed (boxes included).
            if (ReferenceEquals(field, mappedField)) continue;
            result ??= CloneMethod.Invoke(value, null);
            f.SetValue(result, mappedField);
        }
        return result ?? value;
    }

    /// <summary>A text for comparing two calls: buffers become <paramref name="token"/>s, numbers keep every bit.</summary>
    public static string Describe(object? value, Func<object, string> token)
    {
        switch (value)
        {
            case null:
                return "null";
            case DeviceBuffer<float> or DeviceBuffer<int>:
                return token(value);
            case DeviceScalar s:
                return "scalar(" + token(s.Buffer) + ")";
            case float f:
                return f.ToString("R", CultureInfo.InvariantCulture);
            case double d:
                return d.ToString("R", CultureInfo.InvariantCulture);
            case string s:
                return s;
            case UnaryStep step:
                return step.ToString();
            case Delegate d:
                return d.Method.DeclaringType?.Name + "." + d.Method.Name;
            case IEnumerable e:
                return "[" + string.Join(",", e.Cast<object?>().Select(x => Describe(x, token))) + "]";
        }
        var t = value.GetType();
        if (t.IsPrimitive || t.IsEnum || !t.IsValueType) return Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
        return "{" + string.Join(",", Fields(t).Select(f => FieldName(f) + "=" + Describe(f.GetValue(value), token))) + "}";
    }

    /// <summary>A field's name, or its property's for a compiler-made backing field.</summary>
    private static string FieldName(FieldInfo f) =>
        f.Name.StartsWith('<') && f.Name.IndexOf('>') is var end and > 0 ? f.Name[1..end] : f.Name;

    private static Type? ElementType(Type listType)
    {
        if (listType.IsArray) return IsBufferLike(listType.GetElementType()!) ? listType.GetElementType() : null;
        var generic = listType.GetInterfaces().Concat([listType])
            .FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IList<>));
        var element = generic?.GetGenericArguments()[0];
        return element != null && IsBufferLike(element) ? element : null;
    }

    // Descriptor structs (Adam's buffer sets) count: a list of them is mapped item by item.
    private static bool IsBufferLike(Type t) =>
        t == typeof(DeviceBuffer<float>) || t == typeof(DeviceBuffer<int>) || t == typeof(DeviceScalar) ||
        (t.IsValueType && !t.IsPrimitive && !t.IsEnum) ||
        typeof(DeviceBuffer<float>).IsAssignableFrom(t) || typeof(DeviceBuffer<int>).IsAssignableFrom(t);

    private static FieldInfo[] Fields(Type t) =>
        FieldCache.GetOrAdd(t, type => type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic));
}
