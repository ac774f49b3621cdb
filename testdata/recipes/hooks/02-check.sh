# The second hook sees the first one's work and the copied files.
set -e
test "$(cat /etc/hooked)" = from-hook
/usr/local/bin/hello
