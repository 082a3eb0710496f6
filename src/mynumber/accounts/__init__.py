"""公金受取口座 (public-fund receiving accounts) and 預貯金口座付番 (deposit-account numbering).

The pure foundations of the context: the 全銀 character set and the holder-name check
(:mod:`.zengin`), the 全銀協 総合振込 file writer (:mod:`.transfer_file`) and the bank and
branch reference data with its merger history (:mod:`.banks`).  None of them does I/O beyond
reading the packaged CSV files and writing to a file object the caller passes.
"""
