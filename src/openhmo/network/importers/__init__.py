"""Importers of provider data: CMS QHP directory, Transparency-in-Coverage rates, NPPES CSV."""
