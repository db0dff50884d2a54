"""Forms of the CSV import pages (the mapping itself is read from `map-<column index>` fields)."""

from django import forms

from leads.models import Campaign, Source

MAX_UPLOAD_BYTES = 200 * 1024 * 1024


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file", help_text="UTF-8, Windows-1252 (Excel) or Latin-1, comma or semicolon separated."
    )
    source = forms.ModelChoiceField(queryset=Source.objects.order_by("name"), required=False, empty_label="Choose…")
    new_source = forms.CharField(label="or a new source", max_length=120, required=False)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError("The file is larger than 200 MB; split it into several imports.")
        return upload

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("source") and not (cleaned.get("new_source") or "").strip():
            raise forms.ValidationError("Choose the source these leads come from, or name a new one.")
        return cleaned


class ImportStartForm(forms.Form):
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.order_by("name"), required=False, empty_label="No campaign (or from a column)"
    )
