// Applies a VMC stream (transflower live, or any VMC performer) to a humanoid Animator on the main thread.
using System.Collections.Generic;
using UnityEngine;

namespace Transflower.LiveReceiver
{
    [AddComponentMenu("Transflower/Transflower VMC Receiver")]
    public class TransflowerVmcReceiver : MonoBehaviour
    {
        public enum RotationMode
        {
            /// <summary>Bones whose rest rotations are identity (VRM normalized, as EVMC4U assumes): localRotation = received.</summary>
            NormalizedLocal,
            /// <summary>Any humanoid (Mixamo, ...) standing in T-pose when the component starts: rotations are
            /// composed with each bone's T-pose rotation, recorded at start.</summary>
            CalibratedFromTPose,
        }

        [Tooltip("Humanoid Animator to drive (default: the one on this GameObject). Give it no controller.")]
        public Animator animator;
        [Tooltip("UDP port to listen on (VMC default 39539).")]
        public int port = VmcUdpReceiver.DefaultPort;
        [Tooltip("Local address to bind (0.0.0.0: all interfaces; 127.0.0.1: this machine only).")]
        public string bindAddress = "0.0.0.0";
        public RotationMode rotationMode = RotationMode.NormalizedLocal;
        [Tooltip("Seconds of jitter buffering; more is smoother, less is more immediate.")]
        [Range(0f, 0.3f)] public float bufferDelay = 0.06f;
        [Tooltip("Move the hips by the received root position (metres, relative to this object).")]
        public bool applyRootPosition = true;
        public float rootPositionScale = 1f;
        [Tooltip("Show the connection status in the game view.")]
        public bool showStatus = true;

        [Header("Status (read only)")]
        public float packetsPerSecond;
        public float lastPacketAge = float.PositiveInfinity;
        public long malformedPackets;
        public string connection = "not started";

        VmcUdpReceiver receiver;
        readonly VmcJitterBuffer buffer = new VmcJitterBuffer();
        readonly List<VmcFrame> drained = new List<VmcFrame>();
        readonly VmcFrame sample = new VmcFrame();
        readonly Transform[] bones = new Transform[VmcBones.Count];
        readonly Quaternion[] restGlobal = new Quaternion[VmcBones.Count];
        readonly Quaternion[] normGlobal = new Quaternion[VmcBones.Count];
        static readonly int[] Parent = BuildParents();
        static readonly int[] Order = BuildOrder();   // parents before children
        long lastCount;
        float rateTimer;

        // parent of each HumanBodyBones in the normalized hierarchy (-1: root); fingers, eyes and jaw included
        static int[] BuildParents()
        {
            var p = new int[VmcBones.Count];
            string[,] pairs =
            {
                {"Hips", ""}, {"Spine", "Hips"}, {"Chest", "Spine"}, {"UpperChest", "Chest"}, {"Neck", "UpperChest"},
                {"Head", "Neck"}, {"LeftEye", "Head"}, {"RightEye", "Head"}, {"Jaw", "Head"},
                {"LeftShoulder", "UpperChest"}, {"LeftUpperArm", "LeftShoulder"}, {"LeftLowerArm", "LeftUpperArm"},
                {"LeftHand", "LeftLowerArm"}, {"RightShoulder", "UpperChest"}, {"RightUpperArm", "RightShoulder"},
                {"RightLowerArm", "RightUpperArm"}, {"RightHand", "RightLowerArm"}, {"LeftUpperLeg", "Hips"},
                {"LeftLowerLeg", "LeftUpperLeg"}, {"LeftFoot", "LeftLowerLeg"}, {"LeftToes", "LeftFoot"},
                {"RightUpperLeg", "Hips"}, {"RightLowerLeg", "RightUpperLeg"}, {"RightFoot", "RightLowerLeg"},
                {"RightToes", "RightFoot"},
            };
            for (int i = 0; i < p.Length; i++) p[i] = -2;
            for (int k = 0; k < pairs.GetLength(0); k++)
                p[VmcBones.IndexOf(pairs[k, 0])] = pairs[k, 1] == "" ? -1 : VmcBones.IndexOf(pairs[k, 1]);
            string[] fingers = { "Thumb", "Index", "Middle", "Ring", "Little" };
            string[] segs = { "Proximal", "Intermediate", "Distal" };
            foreach (string side in new[] { "Left", "Right" })
                foreach (string f in fingers)
                    for (int s = 0; s < 3; s++)
                        p[VmcBones.IndexOf(side + f + segs[s])] = VmcBones.IndexOf(s == 0 ? side + "Hand" : side + f + segs[s - 1]);
            return p;
        }

        static int[] BuildOrder()
        {
            var order = new List<int>();
            var todo = new Queue<int>();
            todo.Enqueue(0);
            while (todo.Count > 0)
            {
                int b = todo.Dequeue();
                order.Add(b);
                for (int c = 0; c < Parent.Length; c++) if (Parent[c] == b) todo.Enqueue(c);
            }
            return order.ToArray();
        }

        void OnEnable()
        {
            if (animator == null) animator = GetComponent<Animator>();
            if (animator == null || !animator.isHuman)
            {
                connection = "no humanoid Animator";
                Debug.LogWarning("TransflowerVmcReceiver: needs a humanoid Animator (Rig > Animation Type: Humanoid).");
                enabled = false;
                return;
            }
            Quaternion rootInv = Quaternion.Inverse(animator.transform.rotation);
            for (int b = 0; b < VmcBones.Count; b++)
            {
                bones[b] = animator.GetBoneTransform((HumanBodyBones)b);
                if (bones[b] != null) restGlobal[b] = rootInv * bones[b].rotation;
            }
            try
            {
                receiver = new VmcUdpReceiver(port, bindAddress);
                connection = "listening on UDP " + port;
            }
            catch (System.Exception e)
            {
                connection = "cannot listen on UDP " + port + ": " + e.Message;
                Debug.LogError("TransflowerVmcReceiver: " + connection);
                enabled = false;
            }
        }

        void OnDisable()
        {
            if (receiver != null) receiver.Dispose();
            receiver = null;
        }

        // after the Animator has written its pose, so ours wins
        void LateUpdate()
        {
            if (receiver == null) return;
            buffer.Delay = bufferDelay;
            drained.Clear();
            receiver.Drain(drained);
            foreach (var f in drained) { buffer.Push(f); receiver.Recycle(f); }
            UpdateStatus();
            if (buffer.Sample(receiver.Now, sample)) Apply(sample);
        }

        void UpdateStatus()
        {
            rateTimer += Time.unscaledDeltaTime;
            if (rateTimer >= 1f)
            {
                long c = receiver.PacketsReceived;
                packetsPerSecond = (c - lastCount) / rateTimer;
                lastCount = c;
                rateTimer = 0f;
            }
            lastPacketAge = (float)receiver.LastPacketAge;
            malformedPackets = receiver.Malformed;
            if (float.IsInfinity(lastPacketAge)) connection = "waiting for VMC on UDP " + port;
            else if (lastPacketAge > 1f) connection = "stream lost " + lastPacketAge.ToString("0.0") + " s ago";
            else connection = "receiving " + packetsPerSecond.ToString("0") + " packets/s";
        }

        static Quaternion Rot(float[] a, int b)
        {
            return new Quaternion(a[b * 4], a[b * 4 + 1], a[b * 4 + 2], a[b * 4 + 3]);
        }

        void Apply(VmcFrame f)
        {
            if (rotationMode == RotationMode.NormalizedLocal)
            {
                for (int b = 0; b < VmcBones.Count; b++)
                    if (f.HasBone[b] && bones[b] != null) bones[b].localRotation = Rot(f.BoneRotations, b);
            }
            else
            {
                // normalized global rotations by FK over the humanoid hierarchy (missing bones: identity)
                Quaternion root = animator.transform.rotation;
                foreach (int b in Order)
                {
                    int p = Parent[b];
                    Quaternion local = f.HasBone[b] ? Rot(f.BoneRotations, b) : Quaternion.identity;
                    normGlobal[b] = p >= 0 ? normGlobal[p] * local : local;
                }
                foreach (int b in Order)  // parents first: setting a parent's world rotation moves its children
                    if (f.HasBone[b] && bones[b] != null) bones[b].rotation = root * normGlobal[b] * restGlobal[b];
            }
            Transform hips = bones[(int)HumanBodyBones.Hips];
            if (applyRootPosition && f.HasRoot && hips != null)
            {
                int h = (int)HumanBodyBones.Hips;
                Vector3 p = new Vector3(f.RootPosition[0] + f.BonePositions[h * 3], f.RootPosition[1] + f.BonePositions[h * 3 + 1],
                                        f.RootPosition[2] + f.BonePositions[h * 3 + 2]);
                hips.position = animator.transform.TransformPoint(p * rootPositionScale);
            }
        }

        void OnGUI()
        {
            if (!showStatus) return;
            GUI.Label(new Rect(10, 10, 480, 22), "Transflower VMC: " + connection);
            GUI.Label(new Rect(10, 30, 480, 22), "last packet " + (float.IsInfinity(lastPacketAge) ? "never" : (lastPacketAge * 1000f).ToString("0") + " ms ago")
                      + ", malformed " + malformedPackets + ", buffered " + buffer.Count);
        }
    }
}
