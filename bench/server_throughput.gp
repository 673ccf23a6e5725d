# server_throughput.gp - kvs-server and redis-server throughput side by side,
# one pair of bars per workload row (server_bench.py draws it).
# Usage: gnuplot -c server_throughput.gp DATA PNG TITLE
# DATA: tab-separated, a header line, then: label, kvs ops/s, redis ops/s.
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 1800,820 font ",10" noenhanced
} else {
    set terminal png size 1800,820 noenhanced
}
set output ARG2
set datafile separator "\t"
set key autotitle columnhead top left
set title ARG3 . ": throughput per workload (median of the rounds; ! = errors, see the table)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [1000:*]
set format y "%.0s%c"
set ylabel "operations per second (log scale)"
set xtics rotate by 40 right scale 0 font ",9"
set grid ytics mytics
set bmargin 12
plot ARG1 using 2:xtic(1) lc rgb "#1f77b4", '' using 3 lc rgb "#d62728"
