# server_latency.gp - latency percentiles (p50, p99, p99.9) of kvs-server and
# redis-server per workload row (server_bench.py draws it).
# Usage: gnuplot -c server_latency.gp DATA PNG TITLE
# DATA: tab-separated, a header line, then: label, kvs p50, p99, p99.9,
# redis p50, p99, p99.9 (microseconds).
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 1800,820 font ",10" noenhanced
} else {
    set terminal png size 1800,820 noenhanced
}
set output ARG2
set datafile separator "\t"
set key autotitle columnhead top left
set title ARG3 . ": latency percentiles per workload (medians of the rounds)"
set logscale y
set ylabel "microseconds (log scale)"
set xtics rotate by 40 right font ",9"
set grid xtics ytics mytics
set bmargin 12
set offsets 0.5, 0.5, 0, 0
plot ARG1 using 0:2:xtic(1) with linespoints lc rgb "#9ecae1" pt 7 dt 1, \
     '' using 0:3 with linespoints lc rgb "#3182bd" pt 9 dt 1, \
     '' using 0:4 with linespoints lc rgb "#08306b" pt 5 dt 1, \
     '' using 0:5 with linespoints lc rgb "#fcae91" pt 6 dt 2, \
     '' using 0:6 with linespoints lc rgb "#de2d26" pt 8 dt 2, \
     '' using 0:7 with linespoints lc rgb "#67000d" pt 4 dt 2
