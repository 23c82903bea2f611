/*
 * vision_dl.h - leptonica and libtesseract, loaded when vision is first used
 * (sam/dl.h): the functions this engine calls, by name.
 */
#ifndef SAM_VISION_DL_H
#define SAM_VISION_DL_H

#include <leptonica/allheaders.h>
#include <tesseract/capi.h>

#include "sam/core.h"

#define VISION_DL_FUNCS(X) \
	X(TessBaseAPIClear) \
	X(TessBaseAPICreate) \
	X(TessBaseAPIDelete) \
	X(TessBaseAPIEnd) \
	X(TessBaseAPIGetIterator) \
	X(TessBaseAPIGetUTF8Text) \
	X(TessBaseAPIInit3) \
	X(TessBaseAPIMeanTextConf) \
	X(TessBaseAPIRecognize) \
	X(TessBaseAPISetImage2) \
	X(TessBaseAPISetSourceResolution) \
	X(TessBaseAPISetVariable) \
	X(TessDeleteText) \
	X(TessPageIteratorBoundingBox) \
	X(TessResultIteratorConfidence) \
	X(TessResultIteratorDelete) \
	X(TessResultIteratorGetPageIterator) \
	X(TessResultIteratorGetUTF8Text) \
	X(TessResultIteratorNext) \
	X(findFileFormatBuffer) \
	X(pixConvertTo32) \
	X(pixDestroy) \
	X(pixGetColormap) \
	X(pixGetData) \
	X(pixGetDepth) \
	X(pixGetHeight) \
	X(pixGetSpp) \
	X(pixGetWidth) \
	X(pixGetWpl) \
	X(pixGetXRes) \
	X(pixReadHeaderMem) \
	X(pixReadMem) \
	X(pixcmapIsOpaque) \
	X(setMsgSeverity)

#define VDL_PTR(f) extern __typeof__(&f) vdl_##f;
VISION_DL_FUNCS(VDL_PTR)
#undef VDL_PTR

/* Load both libraries once; SAM_EUNSUPPORTED when they are not installed. */
int vision_dl_load(struct sam_error *err);

/* Calls by the library's own names go through the resolved pointers. */
#ifndef SAM_VISION_DL_H_IMPL
#define TessBaseAPIClear (*vdl_TessBaseAPIClear)
#define TessBaseAPICreate (*vdl_TessBaseAPICreate)
#define TessBaseAPIDelete (*vdl_TessBaseAPIDelete)
#define TessBaseAPIEnd (*vdl_TessBaseAPIEnd)
#define TessBaseAPIGetIterator (*vdl_TessBaseAPIGetIterator)
#define TessBaseAPIGetUTF8Text (*vdl_TessBaseAPIGetUTF8Text)
#define TessBaseAPIInit3 (*vdl_TessBaseAPIInit3)
#define TessBaseAPIMeanTextConf (*vdl_TessBaseAPIMeanTextConf)
#define TessBaseAPIRecognize (*vdl_TessBaseAPIRecognize)
#define TessBaseAPISetImage2 (*vdl_TessBaseAPISetImage2)
#define TessBaseAPISetSourceResolution (*vdl_TessBaseAPISetSourceResolution)
#define TessBaseAPISetVariable (*vdl_TessBaseAPISetVariable)
#define TessDeleteText (*vdl_TessDeleteText)
#define TessPageIteratorBoundingBox (*vdl_TessPageIteratorBoundingBox)
#define TessResultIteratorConfidence (*vdl_TessResultIteratorConfidence)
#define TessResultIteratorDelete (*vdl_TessResultIteratorDelete)
#define TessResultIteratorGetPageIterator (*vdl_TessResultIteratorGetPageIterator)
#define TessResultIteratorGetUTF8Text (*vdl_TessResultIteratorGetUTF8Text)
#define TessResultIteratorNext (*vdl_TessResultIteratorNext)
#define findFileFormatBuffer (*vdl_findFileFormatBuffer)
#define pixConvertTo32 (*vdl_pixConvertTo32)
#define pixDestroy (*vdl_pixDestroy)
#define pixGetColormap (*vdl_pixGetColormap)
#define pixGetData (*vdl_pixGetData)
#define pixGetDepth (*vdl_pixGetDepth)
#define pixGetHeight (*vdl_pixGetHeight)
#define pixGetSpp (*vdl_pixGetSpp)
#define pixGetWidth (*vdl_pixGetWidth)
#define pixGetWpl (*vdl_pixGetWpl)
#define pixGetXRes (*vdl_pixGetXRes)
#define pixReadHeaderMem (*vdl_pixReadHeaderMem)
#define pixReadMem (*vdl_pixReadMem)
#define pixcmapIsOpaque (*vdl_pixcmapIsOpaque)
#define setMsgSeverity (*vdl_setMsgSeverity)
#endif

#endif
