# A recipe hook: run with /bin/sh as the container's root, in the build
# container, after the files were copied in.
set -e
echo "hook ran in $STINT_IMAGE"
test -f /etc/motd
echo from-hook > /etc/hooked
mkdir -p /home/u
chown 1000:1000 /home/u
