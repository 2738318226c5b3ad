// Minimal stand-ins for the UnityEngine types the runtime scripts touch: enough for Mono's mcs to
// compile them outside Unity (tests/test_unity_client.py). Not a behavioural model of Unity.
using System;

namespace UnityEngine
{
    public class Object { public string name; }
    public class Component : Object
    {
        public Transform transform;
        public GameObject gameObject;
        public T GetComponent<T>() where T : class { return null; }
    }
    public class Behaviour : Component { public bool enabled = true; }
    public class MonoBehaviour : Behaviour { }
    public class GameObject : Object { }
    public class Transform : Component
    {
        public Vector3 position, localPosition;
        public Transform parent;
        public Quaternion rotation = Quaternion.identity, localRotation = Quaternion.identity;
        public Vector3 TransformPoint(Vector3 p) { return position + rotation * p; }
    }
    public struct SkeletonBone { public string name; public Vector3 position; public Quaternion rotation; public Vector3 scale; }
    public struct HumanDescription { public SkeletonBone[] skeleton; }
    public class Avatar : Object { public HumanDescription humanDescription; }
    public class Animator : Behaviour
    {
        public bool isHuman = true;
        public Avatar avatar;
        public Transform GetBoneTransform(HumanBodyBones b) { return null; }
    }
    public enum HumanBodyBones
    {
        Hips, LeftUpperLeg, RightUpperLeg, LeftLowerLeg, RightLowerLeg, LeftFoot, RightFoot, Spine, Chest, Neck, Head,
        LeftShoulder, RightShoulder, LeftUpperArm, RightUpperArm, LeftLowerArm, RightLowerArm, LeftHand, RightHand,
        LeftToes, RightToes, LeftEye, RightEye, Jaw,
        LeftThumbProximal, LeftThumbIntermediate, LeftThumbDistal, LeftIndexProximal, LeftIndexIntermediate, LeftIndexDistal,
        LeftMiddleProximal, LeftMiddleIntermediate, LeftMiddleDistal, LeftRingProximal, LeftRingIntermediate, LeftRingDistal,
        LeftLittleProximal, LeftLittleIntermediate, LeftLittleDistal,
        RightThumbProximal, RightThumbIntermediate, RightThumbDistal, RightIndexProximal, RightIndexIntermediate, RightIndexDistal,
        RightMiddleProximal, RightMiddleIntermediate, RightMiddleDistal, RightRingProximal, RightRingIntermediate, RightRingDistal,
        RightLittleProximal, RightLittleIntermediate, RightLittleDistal,
        UpperChest, LastBone,
    }
    public struct Vector3
    {
        public float x, y, z;
        public Vector3(float x, float y, float z) { this.x = x; this.y = y; this.z = z; }
        public static Vector3 operator +(Vector3 a, Vector3 b) { return new Vector3(a.x + b.x, a.y + b.y, a.z + b.z); }
        public static Vector3 operator *(Vector3 a, float s) { return new Vector3(a.x * s, a.y * s, a.z * s); }
    }
    public struct Quaternion
    {
        public float x, y, z, w;
        public Quaternion(float x, float y, float z, float w) { this.x = x; this.y = y; this.z = z; this.w = w; }
        public static Quaternion identity { get { return new Quaternion(0, 0, 0, 1); } }
        public static Quaternion Inverse(Quaternion q) { return new Quaternion(-q.x, -q.y, -q.z, q.w); }
        public static Quaternion operator *(Quaternion a, Quaternion b)
        {
            return new Quaternion(a.w * b.x + a.x * b.w + a.y * b.z - a.z * b.y, a.w * b.y - a.x * b.z + a.y * b.w + a.z * b.x,
                                  a.w * b.z + a.x * b.y - a.y * b.x + a.z * b.w, a.w * b.w - a.x * b.x - a.y * b.y - a.z * b.z);
        }
        public static Vector3 operator *(Quaternion q, Vector3 v) { return v; }
    }
    public struct Rect { public Rect(float x, float y, float w, float h) { } }
    public static class Time { public static float unscaledDeltaTime; }
    public static class Mathf { public static float Max(float a, float b) { return a > b ? a : b; } }
    public static class Debug
    {
        public static void LogWarning(object m) { Console.Error.WriteLine(m); }
        public static void LogError(object m) { Console.Error.WriteLine(m); }
    }
    public static class GUI { public static void Label(Rect r, string s) { } }
    public class PropertyAttribute : Attribute { }
    public sealed class TooltipAttribute : PropertyAttribute { public TooltipAttribute(string t) { } }
    public sealed class HeaderAttribute : PropertyAttribute { public HeaderAttribute(string t) { } }
    public sealed class RangeAttribute : PropertyAttribute { public RangeAttribute(float a, float b) { } }
    public sealed class AddComponentMenu : Attribute { public AddComponentMenu(string m) { } }
}
