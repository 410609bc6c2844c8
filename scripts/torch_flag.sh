# Sourced by install_deps.sh, build.sh and test.sh: takes a leading `--torch 1.13|2.11` off the
# caller's arguments into $torch (default 1.13); stops with a message on any other value.
torch=1.13
if [[ ${1:-} == --torch ]]; then
  torch=${2:?"--torch needs 1.13 or 2.11"}
  shift 2
fi
case $torch in
  1.13|2.11) ;;
  *) echo "$(basename "$0"): --torch must be 1.13 or 2.11, got '$torch'" >&2; exit 2 ;;
esac
