// What the preview page needs from npm, bundled by esbuild into ../vrm_bundle.js (global TFVRM).
import * as THREE from "three";
import { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";
import { VRMLoaderPlugin, VRMUtils } from "@pixiv/three-vrm";

export { THREE, GLTFLoader, VRMLoaderPlugin, VRMUtils };
