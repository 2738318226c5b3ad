// Where the avatar's hips go for a VMC frame: pure C# (no UnityEngine), so tests run it with Mono.
//
// VMC (as VirtualMotionCapture sends it, and transflower-live too): Root/Pos is the avatar's floor-level root
// (position + rotation, a local pose under the receiver's origin), and the Hips bone's local position is the
// hips relative to that root, in the sender's avatar scale. An avatar of another size keeps its own proportions
// when the whole root motion is scaled by (its hip height / the sender's hip height), as Unity's humanoid
// retargeting scales root motion. A sender that puts no hip height in the Hips bone (zeros) gets the avatar's
// own rest hips offset instead, unscaled.
namespace Transflower.LiveReceiver
{
    public static class VmcRootMath
    {
        /// <summary>Below this Hips height (m) the sender is taken to send no hip height.</summary>
        public const float MinHipsHeight = 0.1f;

        /// <summary>Rotate v by the unit quaternion q (x, y, z, w) at offsets in float arrays (no allocation).</summary>
        public static void Rotate(float[] q, int qi, float[] v, int vi, out float ox, out float oy, out float oz)
        {
            float x = q[qi], y = q[qi + 1], z = q[qi + 2], w = q[qi + 3];
            float vx = v[vi], vy = v[vi + 1], vz = v[vi + 2];
            float tx = 2f * (y * vz - z * vy), ty = 2f * (z * vx - x * vz), tz = 2f * (x * vy - y * vx);
            ox = vx + w * tx + (y * tz - z * ty);
            oy = vy + w * ty + (z * tx - x * tz);
            oz = vz + w * tz + (x * ty - y * tx);
        }

        /// <summary>The scale from the sender's avatar to ours: avatar hip height / streamed Hips height (1 if none).</summary>
        public static float Scale(VmcFrame f, float avatarHipsHeight)
        {
            int h = 0; // HumanBodyBones.Hips
            float streamed = f.HasBone[h] ? f.BonePositions[h * 3 + 1] : 0f;
            return streamed > MinHipsHeight && avatarHipsHeight > 0f ? avatarHipsHeight / streamed : 1f;
        }

        /// <summary>Hips position in the receiver origin's frame: scale * (root + rootRot * hipsLocal), or, without
        /// a streamed hip height, root + rootRot * avatarHipsRest. Returns the scale used.</summary>
        public static float HipsPosition(VmcFrame f, float[] avatarHipsRest, float positionScale, float[] outp)
        {
            int h = 0;
            float avatarHeight = avatarHipsRest[1];
            float s = Scale(f, avatarHeight);
            bool streamed = f.HasBone[h] && f.BonePositions[h * 3 + 1] > MinHipsHeight;
            float ox, oy, oz;
            if (streamed) Rotate(f.RootRotation, 0, f.BonePositions, h * 3, out ox, out oy, out oz);
            else Rotate(f.RootRotation, 0, avatarHipsRest, 0, out ox, out oy, out oz);
            float k = streamed ? s * positionScale : positionScale, ko = streamed ? s * positionScale : 1f;
            outp[0] = k * f.RootPosition[0] + ko * ox;
            outp[1] = k * f.RootPosition[1] + ko * oy;
            outp[2] = k * f.RootPosition[2] + ko * oz;
            return s;
        }
    }
}
