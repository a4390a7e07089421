#!/bin/sh
# Run once in the chroot of the freshly bootstrapped Debian image
# (qemu/src/debian.rs), before the image is cached: what a test VM needs
# and nothing that would slow a boot under TCG or write on its own.
set -eu
echo umw-debian >/etc/hostname
# The root comes from the kernel command line (root=/dev/vda rw); /data is
# the test's disk, not checked at boot (the host checks it after).
cat >/etc/fstab <<'FSTAB'
/dev/vdb /data ext4 defaults 0 0
FSTAB
mkdir -p /data
# Not a first boot: a machine id, and the updates of /etc and /var done
# (ldconfig, the hwdb, the journal catalog: ConditionNeedsUpdate).
od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >/etc/machine-id
echo >>/etc/machine-id
touch /etc/.updated /var/.updated
# Timers and jobs of a long-lived machine, consoles nobody logs into, and
# modules this kernel does not have: none in a boot of a minute under TCG.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
	e2scrub_reap.service fstrim.timer dpkg-db-backup.timer \
	systemd-tmpfiles-clean.timer getty@tty1.service getty-static.service \
	modprobe@.service systemd-update-utmp.service \
	systemd-update-utmp-runlevel.service ldconfig.service \
	systemd-journal-catalog-update.service systemd-hwdb-update.service \
	systemd-timesyncd.service; do
	systemctl mask "$unit" >/dev/null 2>&1 || true
done
# The journal on the console: the examples' reports (umount-wait -v in the
# data service's ExecStop) reach the host's log.
mkdir -p /etc/systemd/journald.conf.d
cat >/etc/systemd/journald.conf.d/umw-console.conf <<'CONF'
[Journal]
Storage=volatile
ForwardToConsole=yes
MaxLevelConsole=info
CONF
# No password prompt on the serial console of a machine nobody logs into.
systemctl mask serial-getty@ttyS0.service >/dev/null 2>&1 || true
apt-get clean
rm -rf /var/lib/apt/lists/*
