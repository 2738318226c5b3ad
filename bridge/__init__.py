"""The live path's output side: retargeting to Unity's humanoid, OSC/VMC over UDP, a browser preview.

Never imports torch. Modules: ``bridge.osc`` (OSC 1.0 codec), ``bridge.retarget`` (HumanBodyBones),
``bridge.vmc`` (VmcSender / VmcReceiver), ``bridge.preview`` (``transflower view``, PreviewServer).
"""
