package policy

// DefaultFile is the policy file `upkeep provision` writes when there is
// none: the defaults, each key shown with a comment, so that an operator
// learns the keys by reading it. It parses to Default (a test says so).
const DefaultFile = `# The host policy of upkeep: what the services it deploys may lay onto this
# host and run as. A missing file means these same defaults. See docs/policy.md.
#
# Rules are paths beneath the root, slash-separated, with * ? [..] matching
# within one component; a rule covers the path it names and everything
# beneath it. NAME stands for the service's name.

[overlay]
# Where a service's config/ may create files and directories (config/etc/x is
# laid at /etc/x). Anything else is refused, one line per path, and nothing
# is written. Add your own places here; this list replaces the defaults.
allow = [
  "etc/NAME/",                    # the service's own directory of config
  "etc/nginx/sites-available/",   # a virtual host (enable it with sites-enabled/NAME)
  "etc/nginx/sites-enabled/NAME",
  "etc/nginx/sites-enabled/NAME.conf",
  "etc/nginx/conf.d/NAME.conf",     # included by nginx.conf's http block
  "etc/logrotate.d/NAME",         # note: logrotate runs its postrotate scripts as root
]
# More paths to refuse, added to the built-in ones, which no policy can allow:
# etc/sudoers* etc/passwd etc/shadow etc/group etc/gshadow etc/ssh/ etc/pam.d/
# etc/ld.so.* etc/cron* etc/systemd/ etc/init.d/ etc/profile* root/ home/*/.ssh/
# usr/ bin/ sbin/ lib*/ boot/ dev/ proc/ sys/ run/upkeep/ etc/anacrontab
# var/spool/cron/ etc/sudo.conf etc/doas.conf etc/security/ etc/environment
# etc/rc.local etc/modprobe.d/ etc/udev/ etc/apt/ etc/polkit-1/ etc/upkeep/
# var/lib/upkeep/
deny = []

[images]
# Refuse (image add, deploy) an image without a good minisign signature by one
# of keys: FILE.minisig beside the image, or image add --sig FILE.
require_signature = false
# minisign public keys: the second line of each minisign.pub.
keys = []
# May a service from an image run as root (user = "root", "0", or no user:
# it would run as the daemon)? For all, or for the services listed.
allow_root = false
allow_root_services = []

[control]
# Members of group may control the daemon through run/upkeep/upkeep.sock;
# members of read_group may only read status, events and logs.
group = "upkeep"
read_group = ""
`
