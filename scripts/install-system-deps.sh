#!/usr/bin/env bash
# Debian packages the PDF route needs: CJK fonts (text and charts), poppler (pdftotext/pdffonts/pdftoppm
# for the tests) and Chromium (HTML → PDF). Installs only what is missing; needs root or sudo.
set -euo pipefail
pkgs=(fonts-noto-cjk fonts-wqy-zenhei poppler-utils chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages present: ${pkgs[*]}"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing system packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fc-cache -f >/dev/null 2>&1 || true
