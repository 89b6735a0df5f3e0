#!/usr/bin/python3
"""Classical denoisers on a prepared denoising dataset's test split: the quality anchors of
`pix2pix bench --quality` (DESIGN.md section 8).

Scores the noisy input itself, scikit-image's NL-means and TV (Chambolle) against the clean side,
with the metrics pix2pix-ts uses (src/eval/metrics.ts): PSNR with MAX=255 and SSIM with an 11x11
Gaussian window (sigma 1.5, K1 0.01, K2 0.03, population covariance), per image on uint8 RGB,
averaged over the split. Prints one JSON line.

  /usr/bin/python3 bench/classical_denoise.py --data data/denoise-256 --sigma 25 [--limit N] [--workers 2]
"""
import argparse
import json
import os
import sys
import time
from multiprocessing import Pool

import numpy as np
from skimage import io
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

SIGMA = 25.0


def to_uint8(x):
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def scores(out, clean):
    psnr = peak_signal_noise_ratio(clean, out, data_range=255)
    ssim = structural_similarity(
        clean,
        out,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=-1,
    )
    return float(psnr), float(ssim)


def nl_means(x):
    s = SIGMA / 255.0
    # The settings: h = 0.8 sigma, the known sigma, fast mode, 5x5 patches, 13x13 search.
    return denoise_nl_means(
        x, h=0.8 * s, sigma=s, fast_mode=True, patch_size=5, patch_distance=6, channel_axis=-1
    )


def one(paths):
    noisy_path, clean_path = paths
    noisy = io.imread(noisy_path)[..., :3]
    clean = io.imread(clean_path)[..., :3]
    x = noisy.astype(np.float64) / 255.0
    nlm = nl_means(x)
    tv = denoise_tv_chambolle(x, weight=0.08, channel_axis=-1)
    return {
        "noisy": scores(noisy, clean),
        "nlmeans": scores(to_uint8(nlm), clean),
        "tv": scores(to_uint8(tv), clean),
    }


def main():
    global SIGMA
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="dataset folder made by pix2pix prepare (test/A noisy, test/B clean)")
    ap.add_argument("--sigma", type=float, default=25.0, help="noise sigma on the 0-255 scale")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N test pairs (0: all)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--save", default="", help="also write NL-means' output of these test pairs (comma-separated names) ...")
    ap.add_argument("--save-dir", default="", help="... into this folder, under the same names")
    args = ap.parse_args()
    SIGMA = args.sigma
    a_dir = os.path.join(args.data, "test", "A")
    b_dir = os.path.join(args.data, "test", "B")
    if not os.path.isdir(a_dir) or not os.path.isdir(b_dir):
        sys.exit(f"error: {args.data} has no test/A and test/B")
    names = sorted(n for n in os.listdir(a_dir) if n.endswith(".png"))
    if args.limit:
        names = names[: args.limit]
    t0 = time.time()
    with Pool(args.workers, initializer=_init, initargs=(SIGMA,)) as pool:
        rows = pool.map(one, [(os.path.join(a_dir, n), os.path.join(b_dir, n)) for n in names])
    for n in filter(None, args.save.split(",")):
        x = io.imread(os.path.join(a_dir, n))[..., :3].astype(np.float64) / 255.0
        io.imsave(os.path.join(args.save_dir, n), to_uint8(nl_means(x)), check_contrast=False)
    result = {"n": len(rows), "sigma": SIGMA, "seconds": time.time() - t0}
    for k in ("noisy", "nlmeans", "tv"):
        result[k] = {
            "psnr": float(np.mean([r[k][0] for r in rows])),
            "ssim": float(np.mean([r[k][1] for r in rows])),
        }
    print(json.dumps(result))


def _init(sigma):
    global SIGMA
    SIGMA = sigma


if __name__ == "__main__":
    main()
