#!/usr/bin/env bash
# Change goapp's DefaultMessage constant in a copy of goapp/: the one-line Go change that the image test and
# the image benchmark rebuild after. Fails, naming the file, when the constant is not where it is looked for.
#
#   goapp/scripts/set-default-message.sh <copy of goapp/> <message>
set -euo pipefail

(( $# == 2 )) || { echo "usage: $0 <copy of goapp/> <message>" >&2; exit 2; }
file="$1/internal/config/config.go"
message="$2"
[[ "$message" =~ ^[A-Za-z0-9\ \!\(\)\.,:-]+$ ]] || { echo "$0: message '$message': use letters, digits, spaces and !().,:-" >&2; exit 2; }

sed -i "s/^\(	DefaultMessage *= \)\".*\"/\1\"$message\"/" "$file"
# The message's characters are literal in a basic regular expression, except the dot.
grep -q "^	DefaultMessage *= \"${message//./\\.}\"\$" "$file" ||
  { echo "$0: no DefaultMessage = \"...\" line changed in $file" >&2; exit 1; }
