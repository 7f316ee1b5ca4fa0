// Package accounts reads and extends the account files of a root that is
// not the running host (an image, a chroot): etc/passwd, etc/group,
// etc/shadow, etc/gshadow. It only ever appends a line for an account that
// is missing, under the lock lckpwdf(3) takes, with each file replaced
// atomically; it never changes a line that is there. On the running host
// itself, provision runs useradd and groupadd instead.
package accounts
