#!/usr/bin/env bash
# The datasets `npm run bench:quality` scores on (none is committed; each is made once, then kept):
#   data/denoise-256          the Debian wallpapers (scripts/fetch-photos.sh), gaussian sigma 25, split 8:2
#   data/denoise-indep-SIGMA  photos unlike them (scripts/fetch-photos.sh --set eval), sigma 15, 25 and 50,
#                             all test pairs: at most 4 tiles a photo (one large photo would outweigh the
#                             rest), the same clean tiles at every sigma (seed 7).
set -euo pipefail
cd "$(dirname "$0")/.."
pix2pix() { node bin/pix2pix.js "$@"; }

[ -f data/photos/LICENSES.txt ] || scripts/fetch-photos.sh
[ -f data/denoise-256/dataset.json ] ||
  pix2pix prepare --from data/photos --task denoise --out data/denoise-256
[ -f data/eval-photos/LICENSES.txt ] || scripts/fetch-photos.sh --set eval
for sigma in 15 25 50; do
  [ -f "data/denoise-indep-$sigma/dataset.json" ] ||
    pix2pix prepare --from data/eval-photos --task denoise --degrade "gaussian:$sigma" --split 0 --seed 7 \
      --max-tiles 4 --out "data/denoise-indep-$sigma"
done
