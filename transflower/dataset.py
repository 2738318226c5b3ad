"""The seed's multimodal dataset: time-synced `<id>.<modality>.npy` arrays cut into training windows.

For each sequence id (from `base_filenames_train.txt` / `base_filenames_test.txt`), every modality is a
(T, D) array at the same frame rate. A window starting at frame s gives, per input modality i, frames
[s + input_time_offsets[i], s + input_time_offsets[i] + input_lengths[i]) and likewise per output. For
the causal Transflower: inputs (motion, audio) with lengths (T, T) and offsets (0, 1 + lookahead), output
motion with length T and offset 1: output frame k is predicted from motion up to k-1 and audio up to
k + lookahead.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transflower.errors import DataError, UserError


@dataclass
class WindowSpec:
    input_modalities: list[str]
    output_modalities: list[str]
    input_lengths: list[int]
    output_lengths: list[int]
    input_time_offsets: list[int]
    output_time_offsets: list[int]

    def __post_init__(self):
        for name, mods, lens, offs in (("input", self.input_modalities, self.input_lengths, self.input_time_offsets),
                                       ("output", self.output_modalities, self.output_lengths, self.output_time_offsets)):
            if not (len(mods) == len(lens) == len(offs)):
                raise UserError(f"{name}_modalities, {name}_lengths and {name}_time_offsets must have the same "
                                f"number of entries; got {len(mods)}, {len(lens)}, {len(offs)}")
            if any(n <= 0 for n in lens):
                raise UserError(f"{name}_lengths must be positive, got {lens}")

    @property
    def span(self) -> int:
        """Frames a window needs from its start frame."""
        ends = [o + n for o, n in zip(self.input_time_offsets, self.input_lengths)]
        ends += [o + n for o, n in zip(self.output_time_offsets, self.output_lengths)]
        return max(ends)

    @property
    def min_offset(self) -> int:
        return min(self.input_time_offsets + self.output_time_offsets)


def read_ids(data_dir: Path, split: str) -> list[str]:
    path = Path(data_dir) / f"base_filenames_{split}.txt"
    if not path.exists():
        raise DataError(f"{path}: missing; run `transflower features {data_dir}` first (it writes the split files)")
    ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f"{path}: lists no sequence ids")
    return ids


def load_modality(data_dir: Path, seq_id: str, modality: str) -> np.ndarray:
    path = Path(data_dir) / f"{seq_id}.{modality}.npy"
    if not path.exists():
        available = sorted({p.name.split(".", 1)[1][:-4] for p in Path(data_dir).glob(f"{seq_id}.*.npy")})
        raise DataError(f"{path}: missing; feature {modality!r} is unknown for {seq_id} (available: {available or 'none'})")
    try:
        arr = np.load(path)
    except Exception as e:
        raise DataError(f"{path}: not a readable .npy array ({e})") from None
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"{path}: expected a 2-D float array (frames, dims), got shape {arr.shape} dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise DataError(f"{path}: contains NaN or inf values")
    return arr.astype(np.float32, copy=False)


def tempo_versions(ids: list[str]) -> dict[str, dict[float, str]]:
    """{id without its tempo tag: {tempo factor: id}} for the time-stretched copies of `transflower features`."""
    from transflower.features import tempo_factor, without_tempo_tag

    groups: dict[str, dict[float, str]] = {}
    for seq_id in ids:
        key = without_tempo_tag(seq_id)
        groups.setdefault(key, {})[tempo_factor(seq_id)] = seq_id
    return groups


class MultimodalDataset:
    """Indexable windows over all sequences of a split; items are (inputs, outputs), lists of float32 arrays.

    torch's DataLoader takes it as a map-style dataset (no torch import here: numpy arrays are collated).

    `tempo_splice` p: with probability p a window switches, at a random frame in its middle half, from its
    clip to another tempo version of the same clip (`<id>~t<f>` from `transflower features`) at the same
    moment of the song: the poses stay continuous, the pace and the music's tempo change together
    (`tempo_splices` N > 1: 1 to N such switches, anywhere but the window's first and last eighth). Without
    it every window's past already moves at the music's tempo, so the model can keep the pace of its own
    past and never learn to take it from the music; a DJ's tempo change, and a dance warm-started at one
    tempo on music at another, are exactly this splice.
    """

    def __init__(self, data_dir, split: str, spec: WindowSpec, stride: int = 1, ids: list[str] | None = None,
                 tempo_splice: float = 0.0, seed: int = 0, tempo_splices: int = 1, music_leads: float = 0.0):
        self.data_dir = Path(data_dir)
        self.spec = spec
        if not 0.0 <= float(tempo_splice) <= 1.0:
            raise UserError(f"data.tempo_splice: expected a probability in 0..1, got {tempo_splice}")
        self.tempo_splice = float(tempo_splice)
        if not (isinstance(tempo_splices, int) and tempo_splices >= 1):
            raise UserError(f"data.tempo_splices: expected an integer >= 1, got {tempo_splices!r}")
        self.tempo_splices = tempo_splices
        if not 0.0 <= float(music_leads) <= 1.0:
            raise UserError(f"data.music_leads: expected a probability in 0..1, got {music_leads}")
        if music_leads > 0 and (self.tempo_splice == 0 or tempo_splices != 1):
            raise UserError("data.music_leads: needs data.tempo_splice > 0 with data.tempo_splices: 1 (one cut a window)")
        self.music_leads = float(music_leads)
        self._rng = np.random.default_rng(seed)
        self.ids = ids if ids is not None else read_ids(self.data_dir, split)
        mods = sorted(set(spec.input_modalities) | set(spec.output_modalities))
        self.arrays: dict[str, dict[str, np.ndarray]] = {}
        self.index: list[tuple[str, int]] = []
        for seq_id in self.ids:
            arrs = {m: load_modality(self.data_dir, seq_id, m) for m in mods}
            lengths = {m: a.shape[0] for m, a in arrs.items()}
            if len(set(lengths.values())) > 1:
                raise DataError(f"{self.data_dir / seq_id}: modalities have different lengths {lengths}; "
                                f"they must be time-synced at one frame rate (re-run `transflower features`)")
            n = next(iter(lengths.values()))
            self.arrays[seq_id] = arrs
            first = -spec.min_offset if spec.min_offset < 0 else 0
            for s in range(first, n - spec.span + 1, stride):
                self.index.append((seq_id, s))
        if not self.index:
            raise DataError(f"{self.data_dir}: no sequence of split {split!r} is long enough for a {spec.span}-frame window")
        self.dims = {m: self.arrays[self.ids[0]][m].shape[1] for m in mods}
        self.versions = {}  # id -> [(factor, other version's id)]
        if self.tempo_splice > 0:
            from transflower.features import tempo_factor

            for group in tempo_versions(self.ids).values():
                for seq_id in group.values():
                    self.versions[seq_id] = [(f, o) for f, o in group.items() if o != seq_id]
            if not any(self.versions.values()):
                raise DataError(f"{self.data_dir}: data.tempo_splice needs time-stretched copies (<id>~t<f>) in the "
                                f"{split} split; run `transflower features` with --tempo-augment")
            self._factor = {seq_id: tempo_factor(seq_id) for seq_id in self.ids}

    def __len__(self) -> int:
        return len(self.index)

    def spliced(self, seq_id: str, s: int, other: str, k: int) -> dict[str, np.ndarray] | None:
        """Frames [s + min(0, min_offset), s + span) of `seq_id` up to s + k, then `other` from the same
        moment of the song on; None where `other` ends too soon."""
        return self.spliced_chain(seq_id, s, [(k, other)])

    def spliced_chain(self, seq_id: str, s: int, cuts: list[tuple[int, str]]) -> dict[str, np.ndarray] | None:
        """The window at s, switching at each window frame k of `cuts` [(k, version id), ...] (increasing k)
        to that version at the same moment of the song; None where a version ends too soon."""
        sp = self.spec
        lo = s + min(0, sp.min_offset)
        total = s + sp.span - lo
        parts: dict[str, list[np.ndarray]] = {m: [] for m in self.arrays[seq_id]}
        cur, pos, done = seq_id, lo, 0
        for k, other in list(cuts) + [(None, None)]:
            take = total - done if k is None else s + k - lo - done
            n_cur = next(iter(self.arrays[cur].values())).shape[0]
            if take < 0 or pos < 0 or pos + take > n_cur:
                return None
            for m, a in self.arrays[cur].items():
                parts[m].append(a[pos:pos + take])
            pos, done = pos + take, done + take
            if other is not None:
                pos, cur = self._same_moment(pos, cur, other), other
        return {m: np.concatenate(p) for m, p in parts.items()}

    def __getitem__(self, i: int):
        seq_id, s = self.index[i]
        arrs, sp = self.arrays[seq_id], self.spec
        n = min(sp.input_lengths + sp.output_lengths)
        lead = None  # (cut frame, the version whose music leads)
        if self.versions.get(seq_id) and self._rng.random() < self.tempo_splice:
            ks = np.sort(self._rng.choice(np.arange(n // 8, 7 * n // 8 + 1), self._rng.integers(1, self.tempo_splices + 1),
                                          replace=False)) if self.tempo_splices > 1 else [int(self._rng.integers(n // 4, 3 * n // 4 + 1))]
            cuts, cur = [], seq_id
            for k in ks:  # each cut to a version other than the one playing
                options = [o for _, o in self.versions[seq_id] if o != cur] + ([seq_id] if cur != seq_id else [])
                cur = options[self._rng.integers(len(options))]
                cuts.append((int(k), cur))
            window = self.spliced_chain(seq_id, s, cuts)
            if window is not None:
                if self.music_leads > 0 and self._rng.random() < self.music_leads:
                    k, other = cuts[0]
                    led = self._music_led(window, s + k - (s + min(0, sp.min_offset)), other,
                                          self._same_moment(s + k, seq_id, other))
                    if led is not None:
                        window, lead = led, cuts[0]
                arrs, s = window, -min(0, sp.min_offset)
        inputs = [arrs[m][s + o : s + o + n] for m, o, n in zip(sp.input_modalities, sp.input_time_offsets, sp.input_lengths)]
        outputs = [arrs[m][s + o : s + o + n] for m, o, n in zip(sp.output_modalities, sp.output_time_offsets, sp.output_lengths)]
        if self.music_leads > 0:
            mask = np.ones((sp.output_lengths[0], 1), np.float32)
            if lead is not None:  # output t is the pose of window frame t + offset: a target from the cut on
                mask[: max(lead[0] - sp.output_time_offsets[0], 0)] = 0.0
            outputs.append(mask)
        return inputs, outputs

    def _same_moment(self, row: int, version: str, other: str) -> int:
        """The row of `other` at the moment of the song that is row `row` of `version`."""
        return int(round(row * self._factor[version] / self._factor[other]))

    def _music_led(self, window: dict, at_cut: int, other: str, cut_in_other: int) -> dict | None:
        """A spliced window whose audio is `other`'s throughout: window row `at_cut` (the cut) is row
        `cut_in_other` of `other`, and the rows before it are what `other` plays leading up to it. None where
        `other` starts too late for that."""
        audio = self.arrays[other].get("audio")
        total = next(iter(window.values())).shape[0]
        start = cut_in_other - at_cut
        if audio is None or start < 0 or start + total > audio.shape[0]:
            return None
        out = dict(window)
        out["audio"] = audio[start:start + total]
        return out


def style_balanced_weights(dataset: MultimodalDataset, modality: str = "style") -> np.ndarray:
    """A sampling weight per window such that every style label is drawn equally often.

    The data is mostly waltz (26 waltzes, 7 rumbas, 4 cha-chas): sampled uniformly, the rarer styles are
    a sixth of what the model sees and their labels are learned weakly. Each window takes its style
    from its first frame (a clip has one style); weights sum to 1."""
    if modality not in dataset.arrays[dataset.ids[0]]:
        raise DataError(f"{dataset.data_dir}: style balancing needs the {modality!r} feature (<id>.{modality}.npy); "
                        f"re-run `transflower features` on data with a styles.json, or turn balance_styles off")
    labels = np.array([int(dataset.arrays[seq_id][modality][s, 0]) for seq_id, s in dataset.index])
    counts = np.bincount(labels)
    w = 1.0 / counts[labels]
    return w / w.sum()
