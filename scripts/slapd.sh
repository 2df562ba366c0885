#!/usr/bin/env bash
# Run a throwaway OpenLDAP (Debian's slapd) on 127.0.0.1 for the LDAP tier, as root,
# without systemd and without touching the host's /etc/ldap or any slapd of the host.
#
# Usage: scripts/slapd.sh up|down|reset|status|env
#
#   up      install slapd and ldap-utils if missing (told not to configure a directory
#           of their own), write a private slapd.conf, start slapd and wait until it
#           answers, then add the base entries (the base, ou=Groups, ou=People) that are
#           missing. Idempotent: a running slapd is left alone unless its configuration
#           changed.
#   down    stop slapd by its PID file (only if that PID is a slapd).
#   reset   down, remove the database, up: an empty directory again.
#   status  exit 0 only if slapd runs, answers and holds the base entries.
#   env     print `export` lines for the tests. No secret is printed: the administrator
#           password lives in a root-only file whose path is printed instead.
#
# Everything lives below /var/lib/waldur-ldap-test (config, database, PID file, the
# password file in secrets/, mode 700). Base DN dc=waldur-test,dc=local; the
# administrator cn=admin,dc=waldur-test,dc=local gets a random password made once.
#
# Environment: WALDUR_LDAP_PORT  the listening port on 127.0.0.1 [38389]

set -euo pipefail

HOST=127.0.0.1
PORT="${WALDUR_LDAP_PORT:-38389}"
URI="ldap://$HOST:$PORT"
BASE_DN="dc=waldur-test,dc=local"
ADMIN_DN="cn=admin,$BASE_DN"
STATE_DIR=/var/lib/waldur-ldap-test
CONF=$STATE_DIR/slapd.conf
DB_DIR=$STATE_DIR/db
RUN_DIR=$STATE_DIR/run
PID_FILE=$RUN_DIR/slapd.pid
LOG_FILE=$STATE_DIR/slapd.log
SECRET_DIR=$STATE_DIR/secrets
ADMIN_PASS_FILE=$SECRET_DIR/admin-password
ADMIN_HASH_FILE=$SECRET_DIR/admin-password.ssha
SCHEMA_DIR=/etc/ldap/schema
PACKAGES=(slapd ldap-utils)
START_TIMEOUT=30
STOP_TIMEOUT=15

LOG_TAG=slapd
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

validate_settings() {
  [[ $PORT =~ ^[0-9]{4,5}$ ]] && ((PORT > 1024 && PORT < 65536)) \
    || die "WALDUR_LDAP_PORT '$PORT' is invalid: a port number above 1024"
}

running_pid() { pid_from_file "$PID_FILE" slapd; }

# The Debian package would otherwise make a directory of its own under /etc/ldap.
install_slapd() {
  if [[ $(dpkg-query -W -f='${Status}' slapd 2>/dev/null || true) != "install ok installed" ]]; then
    echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
  fi
  install_packages
}

write_secret() {
  install -d -o root -g root -m 700 "$SECRET_DIR"
  if [[ ! -s $ADMIN_PASS_FILE ]]; then
    od -An -tx1 -N24 /dev/urandom | tr -d ' \n' | update_file "$ADMIN_PASS_FILE" root:root 600
  fi
  chmod 600 "$ADMIN_PASS_FILE"
}

# slapd.conf holds only a salted hash; slappasswd reads the password from its file (-T),
# never from a command line.
write_config() {
  local hash
  install -d -o root -g root -m 755 "$STATE_DIR"
  install -d -o openldap -g openldap -m 700 "$DB_DIR" "$RUN_DIR"
  # The hash is kept beside the password and made again only when the password changed,
  # so an unchanged `up` rewrites nothing.
  if [[ ! -s $ADMIN_HASH_FILE || $ADMIN_PASS_FILE -nt $ADMIN_HASH_FILE ]]; then
    slappasswd -T "$ADMIN_PASS_FILE" -h '{SSHA}' | update_file "$ADMIN_HASH_FILE" root:root 600
  fi
  hash=$(<"$ADMIN_HASH_FILE")
  update_file "$CONF" root:openldap 640 <<EOF
# Written by scripts/slapd.sh: a throwaway directory for the LDAP tier.
include $SCHEMA_DIR/core.schema
include $SCHEMA_DIR/cosine.schema
include $SCHEMA_DIR/nis.schema
include $SCHEMA_DIR/inetorgperson.schema
pidfile $PID_FILE
modulepath /usr/lib/ldap
moduleload back_mdb
loglevel stats
database mdb
maxsize 104857600
suffix "$BASE_DN"
rootdn "$ADMIN_DN"
rootpw $hash
directory $DB_DIR
index objectClass eq
index cn,uid,memberUid eq
index gidNumber,uidNumber eq
EOF
}

answers() {
  ldapsearch -x -LLL -H "$URI" -s base -b "" namingContexts >/dev/null 2>&1
}

start_slapd() {
  local start pid
  if pid=$(running_pid); then
    log "slapd: already running (pid $pid)"
  else
    if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
      die "port $PORT on $HOST is taken by another process; set WALDUR_LDAP_PORT"
    fi
    rm -f "$PID_FILE"
    log "slapd: starting on $URI"
    slaptest -Q -u -f "$CONF" >>"$LOG_FILE" 2>&1 || die_with_log "slapd.conf is invalid" "$LOG_FILE"
    # -d 0 would stay in the foreground; without -d slapd forks and writes the PID file.
    slapd -f "$CONF" -h "$URI/" -u openldap -g openldap -s 0 </dev/null >>"$LOG_FILE" 2>&1 \
      || die_with_log "slapd failed to start" "$LOG_FILE"
  fi
  start=$SECONDS
  until running_pid >/dev/null && answers; do
    ((SECONDS - start < START_TIMEOUT)) \
      || die_with_log "slapd does not answer on $URI after ${START_TIMEOUT}s" "$LOG_FILE"
    sleep 0.1
  done
  log "slapd: answering (pid $(running_pid || echo '?'))"
}

stop_slapd() {
  local pid
  if ! pid=$(running_pid); then
    log "slapd: not running"
    return 0
  fi
  stop_pid slapd "$pid" "$STOP_TIMEOUT"
  rm -f "$PID_FILE"
}

# ldapadd as the administrator; the password comes from its file (-y), never argv.
as_admin() {
  local tool=$1
  shift
  "$tool" -x -H "$URI" -D "$ADMIN_DN" -y "$ADMIN_PASS_FILE" "$@"
}

has_entry() {
  as_admin ldapsearch -LLL -s base -b "$1" dn >/dev/null 2>&1
}

add_base_entries() {
  local dn
  has_entry "$BASE_DN" || as_admin ldapadd >/dev/null <<EOF
dn: $BASE_DN
objectClass: dcObject
objectClass: organization
dc: waldur-test
o: Waldur test directory
EOF
  for dn in Groups People; do
    has_entry "ou=$dn,$BASE_DN" || as_admin ldapadd >/dev/null <<EOF
dn: ou=$dn,$BASE_DN
objectClass: organizationalUnit
ou: $dn
EOF
  done
}

cmd_up() {
  require_root
  validate_settings
  install_slapd
  write_secret
  write_config
  if ((CONFIG_CHANGED)) && running_pid >/dev/null; then
    log "configuration changed: restarting slapd"
    stop_slapd
  fi
  start_slapd
  add_base_entries
  log "up: $URI, base $BASE_DN, administrator $ADMIN_DN (password in $ADMIN_PASS_FILE)"
}

cmd_down() {
  require_root
  stop_slapd
  log "down"
}

cmd_reset() {
  require_root
  stop_slapd
  rm -rf "$DB_DIR"
  cmd_up
}

cmd_status() {
  require_root
  validate_settings
  local pid
  if ! pid=$(running_pid); then
    echo "slapd: down"
    return 1
  fi
  echo "slapd: up (pid $pid, $URI)"
  if ! answers; then
    echo "slapd: not answering on $URI"
    return 1
  fi
  for dn in "$BASE_DN" "ou=Groups,$BASE_DN" "ou=People,$BASE_DN"; do
    if ! has_entry "$dn"; then
      echo "entry $dn: missing"
      return 1
    fi
  done
  echo "base entries: present"
}

cmd_env() {
  require_root
  validate_settings
  printf 'export %s=%q\n' \
    WALDUR_LDAP_URI "$URI" \
    WALDUR_LDAP_BASE_DN "$BASE_DN" \
    WALDUR_LDAP_BIND_DN "$ADMIN_DN" \
    WALDUR_LDAP_PASSWORD_FILE "$ADMIN_PASS_FILE"
}

dispatch "$@"
