# metastore bench put --endpoints=127.0.0.1:24569 --conns=100 --clients=100 --key-size=8 --key-space-size=100000 --sequential-keys --val-size=256 --total=100000 
