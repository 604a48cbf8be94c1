#!/usr/bin/env python3
# Usage: python3 scripts/scale_spread.py CHECKPOINT.safetensors (a micromix checkpoint)
# FP4 block-scale spread per (row, group of G consecutive blocks) in a micromix checkpoint's weights:
# the condition under which an INT8 route folds the per-32 scales exactly (spread <= 3 binades).
import json, struct, sys, numpy as np
path = sys.argv[1]
f = open(path, 'rb'); n = struct.unpack('<Q', f.read(8))[0]; h = json.loads(f.read(n)); base = 8 + n
def arr(k):
    e = h[k]; a, b = e['data_offsets']; f.seek(base + a)
    return np.frombuffer(f.read(b - a), dtype=np.uint8).reshape(e['shape'])
res = {}
for G in (4, 8):
    rows_ok = rows_all = 0; tiles_ok = tiles_all = 0; hist = np.zeros(16, int)
    for k in sorted(h):
        if not k.endswith('.mx4.scales'): continue
        sc = arr(k).astype(int); codes = arr(k[:-len('scales')] + 'codes')
        R, B = sc.shape
        nz = (codes.reshape(R, B, 16) & 0x77).any(axis=2)  # block has a nonzero element
        for g0 in range(0, B - B % G, G):
            s = np.where(nz[:, g0:g0 + G], sc[:, g0:g0 + G], -1)
            hi = s.max(axis=1); lo = np.where(nz[:, g0:g0 + G], sc[:, g0:g0 + G], 999).min(axis=1)
            spread = np.where(hi >= 0, hi - lo, 0)
            ok = spread <= 3
            rows_ok += ok.sum(); rows_all += R
            np.add.at(hist, np.minimum(spread, 15), 1)
            for t0 in range(0, R, 128):
                tiles_all += 1; tiles_ok += ok[t0:t0 + 128].all()
    print(f"G={G}: (row, group) pairs with spread <= 3: {rows_ok}/{rows_all} = {rows_ok/rows_all:.4f}; "
          f"128-row tiles all conforming: {tiles_ok}/{tiles_all} = {tiles_ok/max(tiles_all,1):.4f}; spread histogram 0..15: {hist.tolist()}")
