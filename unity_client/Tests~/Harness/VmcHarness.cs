// Console harness for tests/test_unity_client.py: runs the package's receiver outside Unity (Mono).
// Usage: mono VmcHarness.exe EXPECTED_PACKETS TIMEOUT_S [GOOD_PACKET_FILE]
// Prints "READY <port>", then after EXPECTED_PACKETS datagrams (or the timeout) the counters, the
// latest root and bones ("BONE name px py pz qx qy qz qw"), a jitter-buffer check and a fuzz check.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Threading;
using Transflower.LiveReceiver;

static class VmcHarness
{
    static string F(float v) { return v.ToString("R", CultureInfo.InvariantCulture); }

    static int Main(string[] args)
    {
        int expected = int.Parse(args[0]);
        double timeout = double.Parse(args[1], CultureInfo.InvariantCulture);
        using (var rx = new VmcUdpReceiver(0, "127.0.0.1"))
        {
            Console.WriteLine("READY " + rx.Port);
            Console.Out.Flush();
            var sw = Stopwatch.StartNew();
            var buffer = new VmcJitterBuffer();
            var drained = new List<VmcFrame>();
            var sample = new VmcFrame();
            long sampled = 0;
            while (rx.PacketsReceived < expected && sw.Elapsed.TotalSeconds < timeout)
            {
                drained.Clear();
                rx.Drain(drained);
                foreach (var f in drained) { buffer.Push(f); rx.Recycle(f); }
                if (buffer.Sample(rx.Now, sample)) sampled++;
                Thread.Sleep(5);
            }
            Thread.Sleep(50);
            drained.Clear();
            rx.Drain(drained);
            foreach (var f in drained) { buffer.Push(f); rx.Recycle(f); }
            Console.WriteLine("PACKETS " + rx.PacketsReceived);
            Console.WriteLine("POSES " + rx.PoseUpdates);
            Console.WriteLine("MALFORMED " + rx.Malformed);
            Console.WriteLine("REJECTED " + rx.Rejected);
            Console.WriteLine("LASTERROR " + rx.Parser.LastError);
            Console.WriteLine("SAMPLED " + sampled);
            var latest = new VmcFrame();
            if (rx.TryGetLatest(latest))
            {
                Console.WriteLine("ROOT " + string.Join(" ", Array.ConvertAll(latest.RootPosition, F)) + " " +
                                  string.Join(" ", Array.ConvertAll(latest.RootRotation, F)));
                Console.WriteLine("TIME " + F(latest.Time));
                Console.WriteLine("OK " + latest.Ok);
                for (int b = 0; b < VmcBones.Count; b++)
                {
                    if (!latest.HasBone[b]) continue;
                    Console.WriteLine("BONE " + VmcBones.Names[b] + " " +
                        F(latest.BonePositions[b * 3]) + " " + F(latest.BonePositions[b * 3 + 1]) + " " + F(latest.BonePositions[b * 3 + 2]) + " " +
                        F(latest.BoneRotations[b * 4]) + " " + F(latest.BoneRotations[b * 4 + 1]) + " " +
                        F(latest.BoneRotations[b * 4 + 2]) + " " + F(latest.BoneRotations[b * 4 + 3]));
                }
            }
            JitterCheck();
            RootMathCheck();
            if (args.Length > 2) Fuzz(File.ReadAllBytes(args[2]));
        }
        return 0;
    }

    // two frames 1/30 s apart on the sender clock: sampling half way slerps to the half angle
    static void JitterCheck()
    {
        var buf = new VmcJitterBuffer { Delay = 0.0 };
        var a = new VmcFrame { HasTime = true, Time = 10f, ArrivalTime = 100.0 };
        var b = new VmcFrame { HasTime = true, Time = 10f + 1f / 30f, ArrivalTime = 100.0 + 1.0 / 30.0 };
        int h = 0;
        a.HasBone[h] = b.HasBone[h] = true;
        float s = (float)Math.Sin(Math.PI / 4), c = (float)Math.Cos(Math.PI / 4);
        b.BoneRotations[3] = c; b.BoneRotations[1] = s; // 90 degrees about Y
        buf.Push(a); buf.Push(b);
        var o = new VmcFrame();
        buf.Sample(100.0 + 0.5 / 30.0, o);
        Console.WriteLine("JITTER " + F(o.BoneRotations[1]) + " " + F(o.BoneRotations[3]) + " " + F(o.Time));
    }

    // the hips of a smaller avatar (hip height 0.744 m) under a root turned 90 degrees about Y, with and without a
    // streamed hip height
    static void RootMathCheck()
    {
        var f = new VmcFrame { HasRoot = true };
        f.RootPosition[0] = 0.1f; f.RootPosition[1] = -0.05f; f.RootPosition[2] = 0.2f;
        float s = (float)Math.Sin(Math.PI / 4), c = (float)Math.Cos(Math.PI / 4);
        f.RootRotation[1] = s; f.RootRotation[3] = c;
        f.HasBone[0] = true; f.BonePositions[1] = 0.93f;
        var rest = new float[] { 0.0f, 0.744f, 0.02f };
        var outp = new float[3];
        float scale = VmcRootMath.HipsPosition(f, rest, 1f, outp);
        Console.WriteLine("ROOTMATH " + F(scale) + " " + F(outp[0]) + " " + F(outp[1]) + " " + F(outp[2]));
        f.BonePositions[1] = 0f;  // a sender with no hip height: the avatar's own rest offset, turned by the root
        scale = VmcRootMath.HipsPosition(f, rest, 1f, outp);
        Console.WriteLine("ROOTMATH0 " + F(scale) + " " + F(outp[0]) + " " + F(outp[1]) + " " + F(outp[2]));
    }

    static void Fuzz(byte[] good)
    {
        var rng = new Random(1234);
        var parser = new VmcPacketParser();
        var frame = new VmcFrame();
        int ok = 0, crashes = 0;
        for (int i = 0; i < 20000; i++)
        {
            byte[] d = (byte[])good.Clone();
            int len = d.Length;
            switch (i % 4)
            {
                case 0: len = rng.Next(0, d.Length + 1); break;
                case 1: for (int k = 0; k < 1 + rng.Next(4); k++) d[rng.Next(d.Length)] = (byte)rng.Next(256); break;
                case 2: { int p = rng.Next(d.Length / 4) * 4; d[p] = 0x7f; d[p + 1] = 0xff; break; }
                case 3: d = new byte[rng.Next(0, 256)]; rng.NextBytes(d); len = d.Length; break;
            }
            try { if (parser.Parse(d, len, frame)) ok++; }
            catch (Exception) { crashes++; }
        }
        Console.WriteLine("FUZZ parsed " + parser.Packets + " ok " + ok + " malformed " + parser.Malformed + " crashes " + crashes);
    }
}
