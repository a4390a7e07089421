complete -c umount-wait -l last-shutdown -d 'Print the verdict the last shutdown\'s --all recorded, and exit' -r -F
complete -c umount-wait -l mode -d 'Which way to wait' -r -f -a "auto\t''
kernel\t''
fallback\t''
notify\t''"
complete -c umount-wait -s w -l timeout -d 'Wait at most DURATION for each target (500ms, 30s, 2m, 1h)' -r
complete -c umount-wait -s N -l namespace -d 'Act in the mount namespace of process PID (or of the namespace file at PATH)' -r -F
complete -c umount-wait -l include -d 'Only mounts at or below PREFIX (repeatable)' -r -F
complete -c umount-wait -l exclude -d 'Never mounts at or below PREFIX (repeatable; wins over --include)' -r -F
complete -c umount-wait -s t -l types -d 'Only these filesystem types (ext4,vfat; noext4: all but ext4)' -r
complete -c umount-wait -s O -l test-opts -d 'Only mounts with these options (ro; noro: not read-only)' -r
complete -c umount-wait -l probe -d 'Print which path this kernel gets ("kernel" or "fallback") and exit'
complete -c umount-wait -s l -l lazy -d 'Lazy unmount: detach now, wait for the last user (MNT_DETACH)'
complete -c umount-wait -s f -l force -d 'Force the unmount (MNT_FORCE)'
complete -c umount-wait -l no-follow -d 'Refuse a TARGET that is a symbolic link (UMOUNT_NOFOLLOW)'
complete -c umount-wait -s R -l recursive -d 'Unmount the mounts below each TARGET first'
complete -c umount-wait -s r -l read-only -d 'Remount read-only what stays busy'
complete -c umount-wait -s A -l all-targets -d 'Unmount every mount of TARGET\'s filesystem in this namespace'
complete -c umount-wait -s d -l detach-loop -d 'After TARGET has shut down, detach its loop device'
complete -c umount-wait -s c -l no-canonicalize -d 'Do not canonicalize TARGET (no symbolic link is resolved in it)'
complete -c umount-wait -l fake -d 'Dry run: take the real run\'s path, print each unmount, remount and detach it would make, in order; change nothing'
complete -c umount-wait -s n -l no-mtab -d 'Accepted for umount(8) compatibility: /etc/mtab is never written'
complete -c umount-wait -s i -l internal-only -d 'Do not run the /sbin/umount.TYPE helpers'
complete -c umount-wait -l json -d 'Print one JSON object per target on stdout, one a line'
complete -c umount-wait -s q -l quiet -d 'Print no "not mounted" errors and no status line'
complete -c umount-wait -s v -l verbose -d 'Say what is done, how long it took, and what held the filesystem'
complete -c umount-wait -s a -l all -d 'Unmount every real filesystem (no TARGET)'
complete -c umount-wait -l include-api -d 'Do not skip API filesystems'
complete -c umount-wait -s h -l help -d 'Print help (see more with \'--help\')'
complete -c umount-wait -s V -l version -d 'Print version'
