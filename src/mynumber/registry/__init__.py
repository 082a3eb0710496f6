"""住民基本台帳 (the resident registry), 住基ネット and J-LIS numbering."""
