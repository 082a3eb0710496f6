"""住基ネット (本人確認情報): the J-LIS copy of every resident's identity and its queries."""
