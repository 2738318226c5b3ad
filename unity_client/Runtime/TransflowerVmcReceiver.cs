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
            /// <summary>Any humanoid (Mixamo, FBX, A-pose rigs): rotations are composed with each bone's T-pose
            /// rotation, taken from the humanoid Avatar's skeleton rest (its T-pose), not from the pose in the scene.</summary>
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
        [Tooltip("Place and turn the avatar by the received root (Root/Pos: the avatar's floor-level root, relative " +
                 "to this object) and its hips from it.")]
        public bool applyRootPosition = true;
        [Tooltip("Extra scale on the root's motion (1: the avatar's own size, see Match Hip Height).")]
        public float rootPositionScale = 1f;
        [Tooltip("Scale the root's motion by this avatar's hip height / the sender's (the Hips bone's height), so " +
                 "avatars of any size keep their feet on the floor.")]
        public bool matchHipHeight = true;
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
        readonly float[] hipsRest = new float[3];   // the avatar's hips in T-pose, in this object's frame
        readonly float[] hipsTarget = new float[3];
        public string calibration = "not calibrated";
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
            CalibrateFromAvatarRest();
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

        // The T-pose rest of every humanoid bone, relative to the Animator's transform: local rest rotations and
        // positions from the Avatar's skeleton description (HumanDescription.skeleton: the T-pose Unity's humanoid
        // itself is defined by), composed down the transform hierarchy. A-pose rigs and scenes that start in any
        // pose calibrate the same. Without that description (rare: avatars built at runtime without one), the
        // current pose is used and the status says so.
        void CalibrateFromAvatarRest()
        {
            var restLocal = new Dictionary<string, SkeletonBone>();
            Avatar avatar = animator.avatar;
            if (avatar != null)
                foreach (SkeletonBone sb in avatar.humanDescription.skeleton)
                    if (sb.name != null) restLocal[sb.name] = sb;
            Transform root = animator.transform;
            int fromAvatar = 0, fromScene = 0;
            for (int b = 0; b < VmcBones.Count; b++)
            {
                bones[b] = animator.GetBoneTransform((HumanBodyBones)b);
                if (bones[b] == null) continue;
                Quaternion q = Quaternion.identity;
                Vector3 p = new Vector3(0f, 0f, 0f);
                bool all = true;
                for (Transform t = bones[b]; t != null && t != root; t = t.parent)  // bone up to the Animator
                {
                    SkeletonBone sb;
                    Quaternion lr;
                    Vector3 lp;
                    if (restLocal.TryGetValue(t.name, out sb)) { lr = sb.rotation; lp = sb.position; }
                    else { lr = t.localRotation; lp = t.localPosition; all = false; }
                    q = lr * q;
                    p = lr * p + lp;
                }
                restGlobal[b] = q;
                if (b == (int)HumanBodyBones.Hips) { hipsRest[0] = p.x; hipsRest[1] = p.y; hipsRest[2] = p.z; }
                if (all) fromAvatar++; else fromScene++;
            }
            calibration = fromScene == 0 ? "T-pose from the Avatar (" + fromAvatar + " bones)"
                                         : "T-pose: " + fromScene + " bones from the scene pose (the Avatar has no skeleton rest for them)";
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
            // Root/Pos: the avatar's floor-level root, as a local pose under this object's frame; its rotation turns
            // the whole body (identity from transflower-live, whose Hips carry the orientation)
            Quaternion rootRot = applyRootPosition && f.HasRoot ? Rot(f.RootRotation, 0) : Quaternion.identity;
            if (rotationMode == RotationMode.NormalizedLocal)
            {
                for (int b = 0; b < VmcBones.Count; b++)
                    if (f.HasBone[b] && bones[b] != null) bones[b].localRotation = Rot(f.BoneRotations, b);
                Transform h = bones[(int)HumanBodyBones.Hips];
                if (h != null && f.HasBone[(int)HumanBodyBones.Hips]) h.localRotation = rootRot * h.localRotation;
            }
            else
            {
                // normalized global rotations by FK over the humanoid hierarchy (missing bones: identity)
                Quaternion root = animator.transform.rotation * rootRot;
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
                float scale = rootPositionScale;
                if (!matchHipHeight) scale *= 1f / Mathf.Max(VmcRootMath.Scale(f, hipsRest[1]), 1e-6f);
                VmcRootMath.HipsPosition(f, hipsRest, scale, hipsTarget);
                hips.position = animator.transform.TransformPoint(new Vector3(hipsTarget[0], hipsTarget[1], hipsTarget[2]));
            }
        }

        void OnGUI()
        {
            if (!showStatus) return;
            GUI.Label(new Rect(10, 10, 480, 22), "Transflower VMC: " + connection);
            GUI.Label(new Rect(10, 50, 480, 22), calibration);
            GUI.Label(new Rect(10, 30, 480, 22), "last packet " + (float.IsInfinity(lastPacketAge) ? "never" : (lastPacketAge * 1000f).ToString("0") + " ms ago")
                      + ", malformed " + malformedPackets + ", buffered " + buffer.Count);
        }
    }
}
