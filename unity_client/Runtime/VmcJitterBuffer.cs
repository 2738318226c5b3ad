// Jitter buffer + interpolation for VMC frames: pure C#, no UnityEngine dependency (tested with Mono).
//
// Frames are placed on the sender's timeline (/VMC/Ext/T) when it is present, else on arrival times.
// The offset between the sender's and the receiver's clocks is the smallest recent (arrival - sender time),
// so network jitter only ever delays a frame; playback runs `Delay` seconds behind that, and Sample()
// interpolates (lerp positions, slerp rotations) between the two frames around the playback time.
using System;
using System.Collections.Generic;

namespace Transflower.LiveReceiver
{
    public sealed class VmcJitterBuffer
    {
        public double Delay = 0.06;       // seconds of buffering (about 2 frames at 30 fps)
        public int Capacity = 32;
        readonly List<VmcFrame> frames = new List<VmcFrame>();
        readonly Stack<VmcFrame> pool = new Stack<VmcFrame>();
        double offset = double.NaN;      // receiver clock - sender clock (minimum seen, slowly relaxed)
        double lastSenderTime = double.NegativeInfinity;
        double lastPushArrival = double.NegativeInfinity;
        public long Resets, Underruns;

        public int Count { get { return frames.Count; } }

        static double Timeline(VmcFrame f) { return f.HasTime ? f.Time : f.ArrivalTime; }

        public void Push(VmcFrame src)
        {
            double t = Timeline(src);
            // a sender restart (its clock jumped back) or a long silence: start over
            if (t < lastSenderTime - 1e-6 || src.ArrivalTime - lastPushArrival > 1.0) Reset();
            double o = src.ArrivalTime - t;
            if (double.IsNaN(offset) || o < offset) offset = o;
            else offset += Math.Min(o - offset, 0.001); // drift up slowly if the minimum delay grows
            lastSenderTime = t;
            lastPushArrival = src.ArrivalTime;
            var f = pool.Count > 0 ? pool.Pop() : new VmcFrame();
            f.CopyFrom(src);
            frames.Add(f);
            while (frames.Count > Capacity) { pool.Push(frames[0]); frames.RemoveAt(0); }
        }

        public void Reset()
        {
            foreach (var f in frames) pool.Push(f);
            frames.Clear();
            offset = double.NaN;
            lastSenderTime = double.NegativeInfinity;
            Resets++;
        }

        /// <summary>Interpolated pose for receiver time <paramref name="now"/>; false if the buffer is empty.</summary>
        public bool Sample(double now, VmcFrame into)
        {
            if (frames.Count == 0) return false;
            double t = now - offset - Delay;
            // drop frames that are entirely in the past (keep one before t)
            while (frames.Count >= 2 && Timeline(frames[1]) <= t) { pool.Push(frames[0]); frames.RemoveAt(0); }
            VmcFrame a = frames[0];
            if (frames.Count == 1 || t <= Timeline(a))
            {
                if (frames.Count == 1 && t > Timeline(a)) Underruns++;
                into.CopyFrom(a);
                return true;
            }
            VmcFrame b = frames[1];
            double span = Timeline(b) - Timeline(a);
            float u = span > 1e-9 ? (float)((t - Timeline(a)) / span) : 1f;
            Interpolate(a, b, u, into);
            return true;
        }

        public static void Interpolate(VmcFrame a, VmcFrame b, float u, VmcFrame into)
        {
            into.CopyFrom(b);
            for (int k = 0; k < 3; k++) into.RootPosition[k] = a.RootPosition[k] + (b.RootPosition[k] - a.RootPosition[k]) * u;
            Slerp(a.RootRotation, 0, b.RootRotation, 0, u, into.RootRotation, 0);
            for (int bone = 0; bone < VmcBones.Count; bone++)
            {
                if (!(a.HasBone[bone] && b.HasBone[bone])) continue;
                for (int k = 0; k < 3; k++)
                {
                    int i = bone * 3 + k;
                    into.BonePositions[i] = a.BonePositions[i] + (b.BonePositions[i] - a.BonePositions[i]) * u;
                }
                Slerp(a.BoneRotations, bone * 4, b.BoneRotations, bone * 4, u, into.BoneRotations, bone * 4);
            }
            into.Time = a.Time + (b.Time - a.Time) * u;
        }

        /// <summary>Shortest-path slerp of quaternions (x, y, z, w) stored at offsets in float arrays.</summary>
        public static void Slerp(float[] qa, int ia, float[] qb, int ib, float u, float[] outq, int io)
        {
            double ax = qa[ia], ay = qa[ia + 1], az = qa[ia + 2], aw = qa[ia + 3];
            double bx = qb[ib], by = qb[ib + 1], bz = qb[ib + 2], bw = qb[ib + 3];
            double dot = ax * bx + ay * by + az * bz + aw * bw;
            if (dot < 0) { bx = -bx; by = -by; bz = -bz; bw = -bw; dot = -dot; }
            double wa, wb;
            if (dot > 0.9995) { wa = 1 - u; wb = u; }
            else
            {
                double th = Math.Acos(Math.Min(1.0, dot)), s = Math.Sin(th);
                wa = Math.Sin((1 - u) * th) / s;
                wb = Math.Sin(u * th) / s;
            }
            double x = wa * ax + wb * bx, y = wa * ay + wb * by, z = wa * az + wb * bz, w = wa * aw + wb * bw;
            double n = Math.Sqrt(x * x + y * y + z * z + w * w);
            if (n < 1e-12) { x = 0; y = 0; z = 0; w = 1; n = 1; }
            outq[io] = (float)(x / n); outq[io + 1] = (float)(y / n); outq[io + 2] = (float)(z / n); outq[io + 3] = (float)(w / n);
        }
    }
}
