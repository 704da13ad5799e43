# chart.gp - the benchmark chart (PNG): left, resumed handshakes per CPU
# second with OpenSSL's built-in ticket keys vs the hsmkeys callback (item 1);
# right, connections per second through HAProxy, baseline vs hsmkeys, by
# fleet size and client count (item 5).
# gnuplot -e "out='F.png'; resume='resume.dat'; fleet='fleet2.dat'" bench/chart.gp
#   resume.dat: "LABEL" built-in-median hsmkeys-median   (one line per TLS version)
#   fleet2.dat: "LABEL" baseline-median hsmkeys-median   (one line per size/clients)
set terminal pngcairo size 1400,520 font "DejaVu Sans,10"
set output out
set multiplot layout 1,2
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set grid ytics
set key top left
set yrange [0:*]
set title "Resumed handshakes per CPU second (in-process, both ends)"
set ylabel "handshakes / CPU s"
plot resume using 2:xtic(1) title "OpenSSL built-in ticket keys" lc rgb "#999999", \
     '' using 3 title "hsmkeys callback" lc rgb "#2060c0"
set title "Seed lab through HAProxy: connections per second"
set key top right
set ylabel "connections / s"
set xtics rotate by -30
plot fleet using 2:xtic(1) title "baseline (own keys per server)" lc rgb "#999999", \
     '' using 3 title "hsmkeys (shared epoch keys)" lc rgb "#2060c0"
unset multiplot
