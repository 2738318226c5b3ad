"""Write the training styles' tempos (transflower.features.style_tempos) into the shipped model's metadata
(.onnx) and features (.pt): the graph and the weights stay as they are."""
import json, os, sys, hashlib
from pathlib import Path
import torch, onnx
from transflower.features import style_tempos
from transflower.audio_features import AudioFeatureConfig
D = Path(sys.argv[1]); f = json.loads((D / "features.json").read_text())
st = style_tempos(D, f["train_ids"], f["clip_styles"], f["fps"], AudioFeatureConfig.from_dict(f["audio_config"]))
print("style tempos", st)
pt = Path("transflower/default_model/transflower_live.pt")
c = torch.load(pt, map_location="cpu", weights_only=False)
c["features"]["style_tempos"] = st
tmp = pt.with_name("." + pt.name + ".tmp"); torch.save(c, tmp); os.replace(tmp, pt)
ox = Path("transflower/default_model/transflower_live.onnx")
proto = onnx.load(str(ox)); g0 = hashlib.sha256(proto.graph.SerializeToString()).hexdigest()
for e in proto.metadata_props:
    if e.key == "transflower":
        m = json.loads(e.value); m["style_tempos"] = {k: float(v) for k, v in st.items()}; e.value = json.dumps(m)
tmp = ox.with_name("." + ox.name + ".tmp"); onnx.save(proto, str(tmp)); os.replace(tmp, ox)
print("graph unchanged:", hashlib.sha256(onnx.load(str(ox)).graph.SerializeToString()).hexdigest() == g0)
