# server_threads.gp - kvs-server throughput against its worker thread count
# (--threads), with single-threaded redis-server as horizontal references
# (server_bench.py draws it).
# Usage: gnuplot -c server_threads.gp DATA PNG TITLE
# DATA: tab-separated, a header line, then: threads, kvs ops/s per workload
# (W columns), redis ops/s per workload (W columns, the same on every line).
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 1000,620 font ",10" noenhanced
} else {
    set terminal png size 1000,620 noenhanced
}
set output ARG2
set datafile separator "\t"
set key autotitle columnhead outside right top vertical
set title ARG3 . ": throughput against kvs-server --threads (medians)"
set logscale x 2
set xlabel "kvs-server worker threads"
set ylabel "operations per second"
set yrange [0:*]
set format y "%.0s%c"
set grid
stats ARG1 using 1 nooutput
ncols = STATS_columns
set xrange [STATS_min / 1.3 : STATS_max * 1.3]
set xtics 2
w = (ncols - 1) / 2
plot for [i=1:w] ARG1 using 1:(column(1 + i)) title columnhead(1 + i) \
         with linespoints lw 2 pt 7 lc i, \
     for [i=1:w] ARG1 using 1:(column(1 + w + i)) title columnhead(1 + w + i) \
         with lines dt 2 lw 2 lc i
