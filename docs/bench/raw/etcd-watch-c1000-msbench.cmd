# metastore bench watch-latency --endpoints=127.0.0.1:24569 --conns=1 --clients=4 --streams=10 --watchers-per-stream=100 --rate=1000 --total=5000 --key-size=8 --val-size=256 
