# metastore bench put --endpoints=127.0.0.1:24569 --conns=10 --clients=100 --key-size=8 --sequential-keys --total=100000 --val-size=256 
