// Background UDP receiver for VMC: pure C# (System.Net), no UnityEngine dependency.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace Transflower.LiveReceiver
{
    public sealed class VmcUdpReceiver : IDisposable
    {
        public const int DefaultPort = 39539;
        public readonly int Port;
        public readonly VmcPacketParser Parser = new VmcPacketParser();

        readonly Socket socket;
        readonly Thread thread;
        readonly object gate = new object();
        readonly VmcFrame state = new VmcFrame();           // accumulated on the receive thread
        readonly Queue<VmcFrame> ready = new Queue<VmcFrame>(); // pose snapshots not yet drained
        readonly Stack<VmcFrame> pool = new Stack<VmcFrame>();
        readonly Stopwatch clock = Stopwatch.StartNew();
        volatile bool running = true;
        long packets, dropped;
        double lastPacketTime = -1;
        public string LastSocketError = "";
        const int MaxQueued = 64;

        /// <summary>Seconds on the receiver's clock (the same clock as VmcFrame.ArrivalTime).</summary>
        public double Now { get { return clock.Elapsed.TotalSeconds; } }
        public long PacketsReceived { get { return Interlocked.Read(ref packets); } }
        public long FramesDropped { get { return Interlocked.Read(ref dropped); } }
        public long Malformed { get { lock (gate) return Parser.Malformed; } }
        public long Rejected { get { lock (gate) return Parser.Rejected; } }
        public long PoseUpdates { get { lock (gate) return Parser.PoseUpdates; } }
        /// <summary>Seconds since the last datagram, or +inf if none yet.</summary>
        public double LastPacketAge { get { lock (gate) return lastPacketTime < 0 ? double.PositiveInfinity : Now - lastPacketTime; } }

        public VmcUdpReceiver(int port = DefaultPort, string bindAddress = "0.0.0.0")
        {
            socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                socket.ReceiveBufferSize = 1 << 20;
                socket.Bind(new IPEndPoint(IPAddress.Parse(bindAddress), port));
                socket.ReceiveTimeout = 100;
            }
            catch
            {
                socket.Close();
                throw;
            }
            Port = ((IPEndPoint)socket.LocalEndPoint).Port;
            thread = new Thread(Run) { IsBackground = true, Name = "VmcUdpReceiver:" + Port };
            thread.Start();
        }

        void Run()
        {
            var buf = new byte[VmcPacketParser.MaxPacket];
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            while (running)
            {
                int n;
                try
                {
                    n = socket.ReceiveFrom(buf, ref from);
                }
                catch (SocketException e)
                {
                    // timeouts, and on Windows WSAECONNRESET from an earlier ICMP error: keep listening
                    if (e.SocketErrorCode != SocketError.TimedOut && e.SocketErrorCode != SocketError.WouldBlock)
                        LastSocketError = e.SocketErrorCode.ToString();
                    continue;
                }
                catch (ObjectDisposedException) { return; }
                catch (Exception e) { LastSocketError = e.GetType().Name; continue; }
                Interlocked.Increment(ref packets);
                lock (gate)
                {
                    lastPacketTime = Now;
                    state.ArrivalTime = lastPacketTime;
                    if (Parser.Parse(buf, n, state))
                    {
                        VmcFrame f = pool.Count > 0 ? pool.Pop() : new VmcFrame();
                        f.CopyFrom(state);
                        if (ready.Count >= MaxQueued) { pool.Push(ready.Dequeue()); Interlocked.Increment(ref dropped); }
                        ready.Enqueue(f);
                    }
                }
            }
        }

        /// <summary>Move every pose received since the last call into <paramref name="into"/> (oldest first).
        /// Hand the frames back with <see cref="Recycle"/> when done.</summary>
        public int Drain(List<VmcFrame> into)
        {
            lock (gate)
            {
                int n = ready.Count;
                while (ready.Count > 0) into.Add(ready.Dequeue());
                return n;
            }
        }

        public void Recycle(VmcFrame f)
        {
            if (f == null) return;
            lock (gate) if (pool.Count < 2 * MaxQueued) pool.Push(f);
        }

        /// <summary>Copy the latest accumulated state; false if nothing was received yet.</summary>
        public bool TryGetLatest(VmcFrame into)
        {
            lock (gate)
            {
                if (Parser.PoseUpdates == 0) return false;
                into.CopyFrom(state);
                return true;
            }
        }

        public void Dispose()
        {
            running = false;
            try { socket.Close(); } catch { }
            if (thread != null && thread.IsAlive) thread.Join(500);
        }
    }
}
