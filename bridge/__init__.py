"""The live path's output side: retargeting to Unity's humanoid, OSC/VMC over UDP, a browser preview.

Never imports torch. Modules: ``transflower.bridge.osc`` (OSC 1.0 codec), ``transflower.bridge.retarget`` (HumanBodyBones),
``transflower.bridge.vmc`` (VmcSender / VmcReceiver), ``transflower.bridge.preview`` (``transflower view``, PreviewServer).
"""
