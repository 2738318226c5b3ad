// Pure C# OSC 1.0 / VMC parser: no UnityEngine dependency, bounds-checked everywhere, never throws.
// A datagram is validated completely before any of it is applied: a malformed packet changes nothing.
using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;

namespace Transflower.LiveReceiver
{
    /// <summary>Unity's HumanBodyBones names, in the enum's order (index == (int)HumanBodyBones.X).</summary>
    public static class VmcBones
    {
        public static readonly string[] Names =
        {
            "Hips", "LeftUpperLeg", "RightUpperLeg", "LeftLowerLeg", "RightLowerLeg", "LeftFoot", "RightFoot",
            "Spine", "Chest", "Neck", "Head", "LeftShoulder", "RightShoulder", "LeftUpperArm", "RightUpperArm",
            "LeftLowerArm", "RightLowerArm", "LeftHand", "RightHand", "LeftToes", "RightToes", "LeftEye", "RightEye",
            "Jaw",
            "LeftThumbProximal", "LeftThumbIntermediate", "LeftThumbDistal",
            "LeftIndexProximal", "LeftIndexIntermediate", "LeftIndexDistal",
            "LeftMiddleProximal", "LeftMiddleIntermediate", "LeftMiddleDistal",
            "LeftRingProximal", "LeftRingIntermediate", "LeftRingDistal",
            "LeftLittleProximal", "LeftLittleIntermediate", "LeftLittleDistal",
            "RightThumbProximal", "RightThumbIntermediate", "RightThumbDistal",
            "RightIndexProximal", "RightIndexIntermediate", "RightIndexDistal",
            "RightMiddleProximal", "RightMiddleIntermediate", "RightMiddleDistal",
            "RightRingProximal", "RightRingIntermediate", "RightRingDistal",
            "RightLittleProximal", "RightLittleIntermediate", "RightLittleDistal",
            "UpperChest",
        };

        public const int Count = 55;
        static readonly Dictionary<string, int> index = Build();

        static Dictionary<string, int> Build()
        {
            var d = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < Names.Length; i++) d[Names[i]] = i;
            return d;
        }

        public static int IndexOf(string name)
        {
            int i;
            return name != null && index.TryGetValue(name, out i) ? i : -1;
        }
    }

    /// <summary>The latest pose state: root, per-bone local position and rotation (x, y, z, w), time.</summary>
    public sealed class VmcFrame
    {
        public readonly float[] RootPosition = new float[3];
        public readonly float[] RootRotation = { 0f, 0f, 0f, 1f };
        public readonly float[] BonePositions = new float[VmcBones.Count * 3];
        public readonly float[] BoneRotations = new float[VmcBones.Count * 4];
        public readonly bool[] HasBone = new bool[VmcBones.Count];
        public bool HasRoot;
        public bool HasTime;
        public float Time;       // /VMC/Ext/T (sender clock, seconds)
        public int Ok;           // /VMC/Ext/OK
        public double ArrivalTime; // receiver clock (seconds) when the datagram arrived
        public long Sequence;    // pose datagrams seen so far

        public VmcFrame()
        {
            for (int b = 0; b < VmcBones.Count; b++) BoneRotations[b * 4 + 3] = 1f;
        }

        public void CopyFrom(VmcFrame o)
        {
            Array.Copy(o.RootPosition, RootPosition, 3);
            Array.Copy(o.RootRotation, RootRotation, 4);
            Array.Copy(o.BonePositions, BonePositions, BonePositions.Length);
            Array.Copy(o.BoneRotations, BoneRotations, BoneRotations.Length);
            Array.Copy(o.HasBone, HasBone, HasBone.Length);
            HasRoot = o.HasRoot; HasTime = o.HasTime; Time = o.Time; Ok = o.Ok;
            ArrivalTime = o.ArrivalTime; Sequence = o.Sequence;
        }
    }

    public sealed class VmcPacketParser
    {
        public const int MaxPacket = 65536;
        public const int MaxDepth = 8;

        public long Packets;     // datagrams handed to Parse
        public long PoseUpdates; // datagrams that carried Root/Pos or Bone/Pos
        public long Malformed;   // not valid OSC: dropped whole
        public long Rejected;    // valid OSC, VMC address with the wrong argument types: message ignored
        public long UnknownBones;
        public string LastError = "";

        // scratch for the apply pass
        readonly float[] args = new float[8];

        /// <summary>Parse one datagram into <paramref name="frame"/>. Returns true if it updated the pose.
        /// Never throws: malformed input is counted in <see cref="Malformed"/> and leaves the frame untouched.</summary>
        public bool Parse(byte[] data, int length, VmcFrame frame)
        {
            Packets++;
            try
            {
                if (data == null || length < 0 || length > data.Length) return Fail("bad buffer");
                if (length > MaxPacket) return Fail("packet larger than any datagram");
                string err = Walk(data, 0, length, 0, null);
                if (err != null) return Fail(err);
                bool pose = false;
                Walk(data, 0, length, 0, frame, ref pose);
                if (pose) { PoseUpdates++; frame.Sequence++; }
                return pose;
            }
            catch (Exception e) // defensive: nothing may escape into the receive thread
            {
                return Fail("internal: " + e.GetType().Name);
            }
        }

        bool Fail(string why)
        {
            Malformed++;
            LastError = why;
            return false;
        }

        static int ReadInt(byte[] d, int p)
        {
            return (d[p] << 24) | (d[p + 1] << 16) | (d[p + 2] << 8) | d[p + 3];
        }

        [StructLayout(LayoutKind.Explicit)]
        struct IntFloat
        {
            [FieldOffset(0)] public int I;
            [FieldOffset(0)] public float F;
        }

        static float ReadFloat(byte[] d, int p)
        {
            var u = new IntFloat { I = ReadInt(d, p) };
            return u.F;
        }

        // Reads an OSC string at p (must end before 'end'); returns the position after its padding, or -1.
        static int SkipString(byte[] d, int p, int end)
        {
            int q = p;
            while (q < end && d[q] != 0) q++;
            if (q >= end) return -1;
            int next = p + ((q - p + 1 + 3) & ~3);
            if (next > end) return -1;
            for (int k = q; k < next; k++) if (d[k] != 0) return -1;
            return next;
        }

        static string ReadString(byte[] d, int p, int next)
        {
            int q = p;
            while (d[q] != 0) q++;
            return Encoding.UTF8.GetString(d, p, q - p);
        }

        string Walk(byte[] d, int pos, int end, int depth, VmcFrame frame)
        {
            bool unused = false;
            return Walk(d, pos, end, depth, frame, ref unused);
        }

        // Validates (frame == null) or applies (frame != null) one packet. Returns an error or null.
        string Walk(byte[] d, int pos, int end, int depth, VmcFrame frame, ref bool pose)
        {
            int size = end - pos;
            if (size <= 0) return "empty packet";
            if ((size & 3) != 0) return "size not a multiple of 4";
            if (d[pos] == (byte)'#')
            {
                if (size < 16) return "truncated bundle header";
                string tag = Encoding.ASCII.GetString(d, pos, 8);
                if (tag != "#bundle\0") return "not a #bundle";
                if (depth >= MaxDepth) return "bundles nested too deep";
                int p = pos + 16;
                while (p < end)
                {
                    if (end - p < 4) return "truncated element size";
                    int n = ReadInt(d, p);
                    p += 4;
                    if (n <= 0 || (n & 3) != 0 || n > end - p) return "bad bundle element size " + n;
                    string e = Walk(d, p, p + n, depth + 1, frame, ref pose);
                    if (e != null) return e;
                    p += n;
                }
                return null;
            }
            if (d[pos] != (byte)'/') return "neither a message nor a bundle";
            return Message(d, pos, end, frame, ref pose);
        }

        string Message(byte[] d, int pos, int end, VmcFrame frame, ref bool pose)
        {
            int p = SkipString(d, pos, end);
            if (p < 0) return "bad address string";
            string address = frame != null ? ReadString(d, pos, p) : null;
            if (p == end) return null; // no type tags: old-style message without arguments
            int tagStart = p;
            p = SkipString(d, p, end);
            if (p < 0) return "bad type tag string";
            if (d[tagStart] != (byte)',') return "type tags must start with ','";
            int tagEnd = tagStart + 1;
            while (d[tagEnd] != 0) tagEnd++;
            int argStart = p;
            // validate every argument's size
            for (int t = tagStart + 1; t < tagEnd; t++)
            {
                char c = (char)d[t];
                switch (c)
                {
                    case 'i': case 'f': case 'c': case 'r': case 'm':
                        if (end - p < 4) return "truncated argument";
                        p += 4; break;
                    case 'h': case 't': case 'd':
                        if (end - p < 8) return "truncated argument";
                        p += 8; break;
                    case 's': case 'S':
                        p = SkipString(d, p, end);
                        if (p < 0) return "bad string argument";
                        break;
                    case 'b':
                        {
                            if (end - p < 4) return "truncated blob size";
                            int n = ReadInt(d, p);
                            p += 4;
                            if (n < 0 || n > end - p) return "bad blob size";
                            int padded = (n + 3) & ~3;
                            if (padded > end - p) return "truncated blob";
                            p += padded; break;
                        }
                    case 'T': case 'F': case 'N': case 'I': break;
                    default: return "unsupported type tag '" + c + "'";
                }
            }
            if (p != end) return "trailing bytes after the arguments";
            if (frame == null) return null;

            int ntags = tagEnd - tagStart - 1;
            bool isBone = address == "/VMC/Ext/Bone/Pos", isRoot = address == "/VMC/Ext/Root/Pos";
            if (isBone || isRoot)
            {
                if (ntags < 8 || d[tagStart + 1] != (byte)'s') { Rejected++; return null; }
                for (int k = 2; k <= 8; k++) if (d[tagStart + k] != (byte)'f') { Rejected++; return null; }
                int after = SkipString(d, argStart, end);
                string name = ReadString(d, argStart, after);
                for (int k = 0; k < 7; k++) args[k] = ReadFloat(d, after + 4 * k);
                if (isRoot)
                {
                    Array.Copy(args, 0, frame.RootPosition, 0, 3);
                    Array.Copy(args, 3, frame.RootRotation, 0, 4);
                    frame.HasRoot = true;
                }
                else
                {
                    int b = VmcBones.IndexOf(name);
                    if (b < 0) { UnknownBones++; return null; }
                    Array.Copy(args, 0, frame.BonePositions, b * 3, 3);
                    Array.Copy(args, 3, frame.BoneRotations, b * 4, 4);
                    frame.HasBone[b] = true;
                }
                pose = true;
            }
            else if (address == "/VMC/Ext/T")
            {
                if (ntags < 1 || d[tagStart + 1] != (byte)'f') { Rejected++; return null; }
                frame.Time = ReadFloat(d, argStart);
                frame.HasTime = true;
            }
            else if (address == "/VMC/Ext/OK")
            {
                if (ntags < 1 || d[tagStart + 1] != (byte)'i') { Rejected++; return null; }
                frame.Ok = ReadInt(d, argStart);
            }
            return null; // other addresses (blendshapes, cameras, ...) are ignored
        }
    }
}
