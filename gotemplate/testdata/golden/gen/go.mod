module shoal/gotemplate-golden

go 1.19
