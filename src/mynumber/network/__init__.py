"""情報提供ネットワークシステム: the core that routes exchanges between agencies by 機関別符号,
under the legal table of permitted exchanges, and keeps the access-record log."""
