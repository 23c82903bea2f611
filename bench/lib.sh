# bench/lib.sh - shell helpers the benchmark scripts share (sourced, not run).

# wall-clock seconds with nanoseconds
now() { date +%s.%N; }

# a port nobody listens on, from a range bench runs rarely collide in
free_port() {
	p=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000 ))
	while curl -s -o /dev/null --max-time 0.2 "http://127.0.0.1:$p/" 2>/dev/null; do p=$((p + 1)); done
	echo "$p"
}

# the median of the numbers on stdin, one a line ("" when there are none)
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print ""; else print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
