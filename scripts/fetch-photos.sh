#!/usr/bin/env bash
# Fetches real photographs from Debian packages into a data folder (git-ignored: never commit them),
# with each file's licence in LICENSES.txt.
#
#   scripts/fetch-photos.sh [OUT]              training photos (wallpapers), OUT defaults to data/photos
#   scripts/fetch-photos.sh --set eval [OUT]   the independent evaluation photos, default data/eval-photos
#
# Only photographs are kept: the packages also hold drawings, renders and logo art, which would teach a
# photo model the wrong statistics. The lists below were made by looking at every candidate; for
# wallpapers shipped at several resolutions only the largest is taken, so one picture is one source.
#
# The evaluation set is what a denoiser is judged on as a user would judge it: textured colour photos
# (people, animals, fruit and food, buildings, machines, plants) from packages that share nothing with
# the training wallpapers, whose tiles are smooth (a plain sigma-5 blur scores 35.75 dB on their test
# split). They are the sample images of OpenCV and scikit-image; the UKUI wallpapers were looked at
# and left out (renders), as were the grayscale samples (camera, brick, grass: the models are RGB).
set -euo pipefail

SET=train
if [ "${1:-}" = "--set" ]; then
  SET=${2:-}
  shift 2 || true
fi
case $SET in
  train)
    OUT=${1:-data/photos}
    CACHE=${CACHE:-data/.cache/wallpapers}
    ;;
  eval)
    OUT=${1:-data/eval-photos}
    CACHE=${CACHE:-data/.cache/eval-photos}
    ;;
  *)
    echo "error: --set is train or eval, not '$SET'" >&2
    exit 2
    ;;
esac

# package|path inside the package|path as the package's debian/copyright names it|output file name
TRAIN_PACKAGES=(lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds lxqt-themes plasma-workspace-wallpapers)
TRAIN_PHOTOS=(
  "lomiri-wallpapers-16.04|usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg|16.04/Bridge_by_Sander_Klootwijk.jpg|Bridge_by_Sander_Klootwijk.jpg"
  "lomiri-wallpapers-16.04|usr/share/backgrounds/Dragonfly_by_Bolly.jpg|16.04/Dragonfly_by_Bolly.jpg|Dragonfly_by_Bolly.jpg"
  "lomiri-wallpapers-16.04|usr/share/backgrounds/Picture_0B_by_freespace.jpg|16.04/Picture_0B_by_freespace.jpg|Picture_0B_by_freespace.jpg"
  "lomiri-wallpapers-16.04|usr/share/backgrounds/Picture_1A_by_freespace.jpg|16.04/Picture_1A_by_freespace.jpg|Picture_1A_by_freespace.jpg"
  "lomiri-wallpapers-16.04|usr/share/backgrounds/Wine_by_Jakkub_Mede.jpg|16.04/Wine_by_Jakkub_Mede.jpg|Wine_by_Jakkub_Mede.jpg"
  "lomiri-wallpapers-16.04|usr/share/backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg|16.04/aitzgorri_by_Aitzol_Berasategi.jpg|aitzgorri_by_Aitzol_Berasategi.jpg"
  "lomiri-wallpapers-16.04|usr/share/backgrounds/free_by_Peter_Nerlich.jpg|16.04/free_by_Peter_Nerlich.jpg|free_by_Peter_Nerlich.jpg"
  "lomiri-wallpapers-16.04|usr/share/backgrounds/friends_by_Aitzol_Berasategi.jpg|16.04/friends_by_Aitzol_Berasategi.jpg|friends_by_Aitzol_Berasategi.jpg"
  "lomiri-wallpapers-16.04|usr/share/backgrounds/greentock_by_Peter_Nerlich.jpg|16.04/greentock_by_Peter_Nerlich.jpg|greentock_by_Peter_Nerlich.jpg"
  "lomiri-wallpapers-16.04|usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg|16.04/life_by_Aitzol_Berasategi.jpg|life_by_Aitzol_Berasategi.jpg"
  "lomiri-wallpapers-16.04|usr/share/backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg|16.04/picosdeeuropa_by_Aitzol_Berasategi.jpg|picosdeeuropa_by_Aitzol_Berasategi.jpg"
  "lomiri-wallpapers-16.04|usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg|16.04/seeding_by_Clements_Engelhardt.jpg|seeding_by_Clements_Engelhardt.jpg"
  "lomiri-wallpapers-16.04|usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg|16.04/sunset_by_Aitzol_Berasategi.jpg|sunset_by_Aitzol_Berasategi.jpg"
  "lomiri-wallpapers-20.04|usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg|20.04/Kleiber_by_Lukas_Baubkus.jpg|Kleiber_by_Lukas_Baubkus.jpg"
  "lxqt-themes|usr/share/lxqt/wallpapers/Butterfly-Kenneth-Wimer.jpg|wallpapers/Butterfly-Kenneth-Wimer.jpg|Butterfly-Kenneth-Wimer.jpg"
  "lxqt-themes|usr/share/lxqt/wallpapers/Valendas.png|wallpapers/Valendas.png|Valendas.png"
  "lxqt-themes|usr/share/lxqt/wallpapers/after-the-rain.jpg|wallpapers/after-the-rain.jpg|after-the-rain.jpg"
  "lxqt-themes|usr/share/lxqt/wallpapers/appleflower.png|wallpapers/appleflower.png|appleflower.png"
  "lxqt-themes|usr/share/lxqt/wallpapers/beam.png|wallpapers/beam.png|beam.png"
  "lxqt-themes|usr/share/lxqt/wallpapers/butterfly.png|wallpapers/butterfly.png|butterfly.png"
  "lxqt-themes|usr/share/lxqt/wallpapers/cloud.png|wallpapers/cloud.png|cloud.png"
  "lxqt-themes|usr/share/lxqt/wallpapers/drop.png|wallpapers/drop.png|drop.png"
  "lxqt-themes|usr/share/lxqt/wallpapers/flowers.png|wallpapers/flowers.png|flowers.png"
  "lxqt-themes|usr/share/lxqt/wallpapers/fog.jpg|wallpapers/fog.jpg|fog.jpg"
  "lxqt-themes|usr/share/lxqt/wallpapers/this-is-not-windows.jpg|wallpapers/this-is-not-windows.jpg|this-is-not-windows.jpg"
  "mate-backgrounds|usr/share/backgrounds/mate/nature/Aqua.jpg|nature/Aqua.jpg|Aqua.jpg"
  "mate-backgrounds|usr/share/backgrounds/mate/nature/Blinds.jpg|nature/Blinds.jpg|Blinds.jpg"
  "mate-backgrounds|usr/share/backgrounds/mate/nature/Dune.jpg|nature/Dune.jpg|Dune.jpg"
  "mate-backgrounds|usr/share/backgrounds/mate/nature/FreshFlower.jpg|nature/FreshFlower.jpg|FreshFlower.jpg"
  "mate-backgrounds|usr/share/backgrounds/mate/nature/Garden.jpg|nature/Garden.jpg|Garden.jpg"
  "mate-backgrounds|usr/share/backgrounds/mate/nature/GreenMeadow.jpg|nature/GreenMeadow.jpg|GreenMeadow.jpg"
  "mate-backgrounds|usr/share/backgrounds/mate/nature/LadyBird.jpg|nature/LadyBird.jpg|LadyBird.jpg"
  "mate-backgrounds|usr/share/backgrounds/mate/nature/RainDrops.jpg|nature/RainDrops.jpg|RainDrops.jpg"
  "mate-backgrounds|usr/share/backgrounds/mate/nature/Storm.jpg|nature/Storm.jpg|Storm.jpg"
  "mate-backgrounds|usr/share/backgrounds/mate/nature/TwoWings.jpg|nature/TwoWings.jpg|TwoWings.jpg"
  "mate-backgrounds|usr/share/backgrounds/mate/nature/Wood.jpg|nature/Wood.jpg|Wood.jpg"
  "mate-backgrounds|usr/share/backgrounds/mate/nature/YellowFlower.jpg|nature/YellowFlower.jpg|YellowFlower.jpg"
  "plasma-workspace-wallpapers|usr/share/wallpapers/BytheWater/contents/images/2560x1600.jpg|BytheWater|plasma-BytheWater.jpg"
  "plasma-workspace-wallpapers|usr/share/wallpapers/ColdRipple/contents/images/2560x1600.jpg|ColdRipple|plasma-ColdRipple.jpg"
  "plasma-workspace-wallpapers|usr/share/wallpapers/ColorfulCups/contents/images/2560x1600.jpg|ColorfulCups|plasma-ColorfulCups.jpg"
  "plasma-workspace-wallpapers|usr/share/wallpapers/DarkestHour/contents/images/2560x1600.jpg|DarkestHour|plasma-DarkestHour.jpg"
  "plasma-workspace-wallpapers|usr/share/wallpapers/EveningGlow/contents/images/2560x1600.jpg|EveningGlow|plasma-EveningGlow.jpg"
  "plasma-workspace-wallpapers|usr/share/wallpapers/FallenLeaf/contents/images/2560x1600.jpg|FallenLeaf|plasma-FallenLeaf.jpg"
  "plasma-workspace-wallpapers|usr/share/wallpapers/Grey/contents/images/2560x1600.jpg|Grey|plasma-Grey.jpg"
  "plasma-workspace-wallpapers|usr/share/wallpapers/Kite/contents/images/2560x1600.jpg|Kite|plasma-Kite.jpg"
  "plasma-workspace-wallpapers|usr/share/wallpapers/OneStandsOut/contents/images/2560x1600.jpg|OneStandsOut|plasma-OneStandsOut.jpg"
  "plasma-workspace-wallpapers|usr/share/wallpapers/Path/contents/images/2560x1600.jpg|Path|plasma-Path.jpg"
  "plasma-workspace-wallpapers|usr/share/wallpapers/summer_1am/contents/images/2560x1600.jpg|summer_1am|plasma-summer_1am.jpg"
)

OCV=usr/share/doc/opencv-doc/examples/data
SKI=usr/lib/python3/dist-packages/skimage/data
EVAL_PACKAGES=(opencv-doc python3-skimage)
EVAL_PHOTOS=(
  "opencv-doc|$OCV/aero1.jpg|samples/data/aero1.jpg|opencv-aero1.jpg"
  "opencv-doc|$OCV/aloeL.jpg|samples/data/aloeL.jpg|opencv-aloeL.jpg"
  "opencv-doc|$OCV/apple.jpg|samples/data/apple.jpg|opencv-apple.jpg"
  "opencv-doc|$OCV/baboon.jpg|samples/data/baboon.jpg|opencv-baboon.jpg"
  "opencv-doc|$OCV/board.jpg|samples/data/board.jpg|opencv-board.jpg"
  "opencv-doc|$OCV/building.jpg|samples/data/building.jpg|opencv-building.jpg"
  "opencv-doc|$OCV/butterfly.jpg|samples/data/butterfly.jpg|opencv-butterfly.jpg"
  "opencv-doc|$OCV/chicky_512.png|samples/data/chicky_512.png|opencv-chicky_512.png"
  "opencv-doc|$OCV/fruits.jpg|samples/data/fruits.jpg|opencv-fruits.jpg"
  "opencv-doc|$OCV/home.jpg|samples/data/home.jpg|opencv-home.jpg"
  "opencv-doc|$OCV/leuvenA.jpg|samples/data/leuvenA.jpg|opencv-leuvenA.jpg"
  "opencv-doc|$OCV/messi5.jpg|samples/data/messi5.jpg|opencv-messi5.jpg"
  "opencv-doc|$OCV/orange.jpg|samples/data/orange.jpg|opencv-orange.jpg"
  "opencv-doc|$OCV/rubberwhale1.png|samples/data/rubberwhale1.png|opencv-rubberwhale1.png"
  "opencv-doc|$OCV/squirrel_cls.jpg|samples/data/squirrel_cls.jpg|opencv-squirrel_cls.jpg"
  "python3-skimage|$SKI/astronaut.png|skimage/data/astronaut.png|skimage-astronaut.png"
  "python3-skimage|$SKI/chelsea.png|skimage/data/chelsea.png|skimage-chelsea.png"
  "python3-skimage|$SKI/coffee.png|skimage/data/coffee.png|skimage-coffee.png"
  "python3-skimage|$SKI/motorcycle_left.png|skimage/data/motorcycle_left.png|skimage-motorcycle_left.png"
  "python3-skimage|$SKI/rocket.jpg|skimage/data/rocket.jpg|skimage-rocket.jpg"
)

if [ "$SET" = eval ]; then
  PACKAGES=("${EVAL_PACKAGES[@]}")
  PHOTOS=("${EVAL_PHOTOS[@]}")
else
  PACKAGES=("${TRAIN_PACKAGES[@]}")
  PHOTOS=("${TRAIN_PHOTOS[@]}")
fi

mkdir -p "$CACHE/debs" "$OUT"
CACHE=$(cd "$CACHE" && pwd)

download() {
  (cd "$CACHE/debs" && apt-get download "${PACKAGES[@]}")
}

if ! ls "$CACHE"/debs/*.deb >/dev/null 2>&1 || [ "$(ls "$CACHE"/debs/*.deb | wc -l)" -lt "${#PACKAGES[@]}" ]; then
  if ! download; then
    # Stale or missing package lists; the lock timeout waits for an apt run already in progress.
    echo "apt-get download failed; running apt-get update once and retrying" >&2
    apt-get -o DPkg::Lock::Timeout=600 update
    download
  fi
fi

for pkg in "${PACKAGES[@]}"; do
  if [ ! -d "$CACHE/x/$pkg" ]; then
    mkdir -p "$CACHE/x/$pkg"
    dpkg -x "$CACHE"/debs/"${pkg}"_*.deb "$CACHE/x/$pkg"
  fi
done

# DEP-5 stanzas of a copyright file as lines "pattern<TAB>copyright<TAB>licence", in file order.
stanzas() {
  awk '
    function flush() { if (files != "") { n = split(files, p, " "); for (i = 1; i <= n; i++) if (p[i] != "") printf "%s\t%s\t%s\n", p[i], copy, lic } files = ""; copy = ""; lic = ""; field = "" }
    /^[ \t]*$/ { flush(); next }
    /^Files:/ { field = "f"; sub(/^Files:[ \t]*/, ""); files = $0; next }
    /^Copyright:/ { field = "c"; sub(/^Copyright:[ \t]*/, ""); copy = $0; next }
    /^License:/ { field = "l"; sub(/^License:[ \t]*/, ""); lic = $0; next }
    /^[A-Za-z-]+:/ { field = ""; next }
    /^[ \t]/ { line = $0; gsub(/^[ \t]+/, "", line); if (field == "f") files = files " " line; else if (field == "c") copy = copy "; " line; next }
    END { flush() }
  ' "$1"
}

# The last stanza whose Files pattern matches wins (DEP-5).
licence_of() {
  local copyright=$1 rel=$2 pat copy lic found=""
  while IFS=$'\t' read -r pat copy lic; do
    # shellcheck disable=SC2053 # the pattern is a glob on purpose
    if [[ $rel == $pat ]]; then found="$lic	$copy"; fi
  done < <(stanzas "$copyright")
  printf '%s' "$found"
}

LICENSES="$OUT/LICENSES.txt"
{
  echo "# Photos fetched by scripts/fetch-photos.sh --set $SET from Debian packages, for development only; do not commit."
  echo "# file	package	licence (debian/copyright)	copyright holders	notes"
} >"$LICENSES"

for entry in "${PHOTOS[@]}"; do
  IFS='|' read -r pkg path rel name <<<"$entry"
  src="$CACHE/x/$pkg/$path"
  if [ ! -f "$src" ]; then
    echo "missing in $pkg: $path (package changed?)" >&2
    exit 1
  fi
  cp "$src" "$OUT/$name"
  lc=$(licence_of "$CACHE/x/$pkg/usr/share/doc/$pkg/copyright" "$rel")
  note=""
  meta="$CACHE/x/$pkg/usr/share/wallpapers/$rel/metadata.json"
  if [ -f "$meta" ]; then
    # Plasma wallpapers name their photographer and an upstream licence in metadata.json.
    note=$(node -e 'const k=require(process.argv[1]).KPlugin;process.stdout.write(`upstream metadata: by ${k.Authors?.[0]?.Name ?? "?"}, ${k.License ?? "?"}`)' "$meta")
  fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$pkg" "${lc:-unknown	unknown}" "$note" >>"$LICENSES"
done

echo "fetched ${#PHOTOS[@]} photos into $OUT (licences in $LICENSES)" >&2
