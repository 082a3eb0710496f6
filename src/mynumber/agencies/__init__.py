"""Each agency's 中間サーバー (intermediate server): its 副本 keyed by its own 機関別符号."""
